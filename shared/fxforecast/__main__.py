"""`python -m fxforecast` is the `fxforecast` command."""

import sys

from .cli import main

sys.exit(main())
