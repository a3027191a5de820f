"""`python -m hf_vocos`: the `hf-vocos` command line."""

import sys

from .cli import main

sys.exit(main())
