"""`python -m flows87.cli`: the `flows87` command without its console script."""

import sys

from flows87.cli import main

sys.exit(main())
