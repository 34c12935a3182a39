"""`python -m xtok`."""

import sys

from xtok.cli import main

sys.exit(main())
