"""``python -m firth``: the same command line as the ``firth`` console script."""

import sys

from firth.cli import main

if __name__ == "__main__":
    sys.exit(main())
