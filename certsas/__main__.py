"""``python -m certsas``."""

from __future__ import annotations

import sys

from certsas.cli import main

sys.exit(main())
