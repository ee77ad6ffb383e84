"""Plain helper modules for the suites (not fixtures): PKIs, Azurite, the served app, clocks."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
