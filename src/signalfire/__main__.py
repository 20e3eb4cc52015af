"""``python -m signalfire`` is the ``signalfire`` console script."""

import sys

from signalfire.cli import main

sys.exit(main())
