"""``python -m certsas``: the command line. Part of the CLI wing; not deployed (SPEC §7)."""

from __future__ import annotations

import sys

from certsas.cli import main

sys.exit(main())
