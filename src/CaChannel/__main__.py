"""``python -m CaChannel``: the command-line tools and the demo (see :mod:`CaChannel.cli`)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
