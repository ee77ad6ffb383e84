"""The clock, behind one seam, so tests fix time instead of patching it; and how time is written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]

# The one textual form of an instant: responses, decision lines, the CLI.
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def system_clock() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


def iso(instant: datetime) -> str:
    """``instant`` as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC)."""
    return f"{instant.astimezone(UTC):{ISO_FORMAT}}"
