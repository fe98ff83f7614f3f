"""``python -m h4tracks.cli``: the same as the ``h4tracks`` console script."""

import sys

from h4tracks.cli import main

sys.exit(main())
