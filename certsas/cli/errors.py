"""The command line's one error: bad input or an unreachable dependency, printed as one line."""

from __future__ import annotations


class CliError(Exception):
    """Printed as ``certsas COMMAND: error: MESSAGE`` with a non-zero exit."""
