"""`python -m hf_vocos.demo`."""

import sys

from . import main

sys.exit(main())
