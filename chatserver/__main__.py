"""`python -m chatserver` is the `chatserver` console script."""

import sys

from chatserver.cli import main

sys.exit(main())
