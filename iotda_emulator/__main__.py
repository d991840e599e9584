"""``python -m iotda_emulator``: the same as the ``iotda-emulator`` console script."""
import sys

from iotda_emulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
