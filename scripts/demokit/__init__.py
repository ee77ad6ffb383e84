"""The parts of ``make demo`` (``scripts/demo.py``): harness, services, checks."""
