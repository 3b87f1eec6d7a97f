"""``python -m nbart``: the same as the ``nbart`` command."""

import sys

from nbart.cli import main

sys.exit(main())
