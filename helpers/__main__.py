"""``python -m helpers``: the researcher toolkit's command line, :mod:`helpers.toolkit.cli`."""

import sys

from helpers.toolkit.cli import main

sys.exit(main())
