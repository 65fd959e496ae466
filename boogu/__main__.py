"""`python -m boogu`: the same as the `boogu` console script."""

import sys

from .cli import main

sys.exit(main())
