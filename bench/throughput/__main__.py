"""``python -m bench.throughput``: the CLI entry (see :mod:`bench.throughput.run`)."""

import sys

from .run import main

sys.exit(main())
