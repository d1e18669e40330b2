"""`python -m cartwatch.streams`: the same command line as `cartwatch`."""

import sys

from cartwatch.streams.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
