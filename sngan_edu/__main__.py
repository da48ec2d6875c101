"""``python -m sngan_edu <command>`` (and ``torchrun ... -m sngan_edu train``): see
:mod:`sngan_edu.cli`."""

import sys

from sngan_edu.cli import main

if __name__ == "__main__":
    sys.exit(main())
