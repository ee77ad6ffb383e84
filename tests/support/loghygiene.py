"""A pytest plugin: every log record of the whole test run is checked for secrets.

Loaded with ``-p tests.support.loghygiene`` (pyproject's addopts). It captures certsas's own
records from INFO and everyone's from WARNING, and fails the run if any holds
what must never reach a log: a SAS signature or token, an account key, a
connection string, a private key, or a whole certificate (PEM or base64 DER).
"""

from __future__ import annotations

import logging
import re

import pytest

from certsas.accounts import AZURITE_KEY

LEAKS = {
    "SAS signature": re.compile(r"sig=(?!REDACTED)[A-Za-z0-9%+/=]{16,}"),
    "SAS token fields": re.compile(r"\bse=\d{4}-\d\d-\d\dT[^&\s]*&(?:[a-z]+=[^&\s]*&)*sig="),
    "account key": re.compile(re.escape(AZURITE_KEY) + r"|AccountKey=[^;\s]{8,}"),
    "PEM block": re.compile(r"-----BEGIN [A-Z ]+-----"),
    "base64 DER certificate": re.compile(r"MII[A-Za-z0-9+/]{200,}"),
    "URL-encoded PEM": re.compile(r"-----BEGIN%20|%2D%2D%2D%2D%2DBEGIN", re.IGNORECASE),
}


def find_leaks(lines: list[str]) -> list[tuple[str, str]]:
    """(kind, excerpt) for every line holding something that must not be logged."""
    found = []
    for line in lines:
        for kind, pattern in LEAKS.items():
            match = pattern.search(line)
            if match:
                found.append((kind, line[max(0, match.start() - 40): match.start() + 60]))
    return found


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.WARNING and not record.name.startswith("certsas"):
            return
        try:
            self.lines.append(self.format(record))
        except Exception:
            self.lines.append(f"{record.name} unformattable record")


_collector = _Collector()


def pytest_sessionstart(session: pytest.Session) -> None:
    root = logging.getLogger()
    root.addHandler(_collector)
    logging.getLogger("certsas").setLevel(logging.INFO)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    logging.getLogger().removeHandler(_collector)
    leaks = find_leaks(_collector.lines)
    decisions = sum("certsas decision" in line for line in _collector.lines)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    summary = (f"log hygiene: {len(_collector.lines)} log records checked "
               f"({decisions} decisions), {len(leaks)} leaks")
    if reporter is not None:
        reporter.write_line(summary)
        for kind, excerpt in leaks[:20]:
            reporter.write_line(f"  LEAK {kind}: {excerpt!r}")
    if leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
