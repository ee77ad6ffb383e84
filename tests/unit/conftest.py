"""The unit suites open no socket (so need no server, emulator or responder); this makes
that a rule, not a hope. (Processes are not guarded: the SDKs run `uname` for their
user agent.)"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.memory import DecisionLines, capturing_decisions


def _refuse(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError("a unit suite tried to open a socket: move the test to tests/integration")


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, _refuse)


@pytest.fixture
def decisions() -> Iterator[DecisionLines]:
    """The decision log lines a test's calls write, parsed."""
    with capturing_decisions() as handler:
        yield handler
