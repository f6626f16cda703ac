"""`python -m keras_adv.cli`."""

import sys

from keras_adv.cli import main

if __name__ == "__main__":
    sys.exit(main())
