"""`python -m demo` (from the repository root)."""

import sys

from . import main

sys.exit(main())
