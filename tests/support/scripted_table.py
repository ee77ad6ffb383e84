"""A loopback stand-in for the Table service that answers from a script and records what
it was sent: for the answers Azurite never gives (a 503 with ``Retry-After``, a 401 to an
Entra ID token, a batch reply that is not what the service writes)."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support.loopback import LoopbackServer, QuietHandler


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Script = Callable[[Seen], Answer]


class ScriptedTable(LoopbackServer):
    """``with ScriptedTable(script) as service:`` then ``service.endpoint``; ``service.seen``
    lists every request, in order. ``script`` chooses each answer from the request."""

    def __init__(self, script: Script, *, tls: ssl.SSLContext | None = None) -> None:
        self.seen: list[Seen] = []
        self._script = script
        self._lock = threading.Lock()
        super().__init__(self._handler(), tls=tls)

    @property
    def endpoint(self) -> str:
        return f"{self.origin}/acct"

    def _handler(self) -> type[QuietHandler]:
        service = self

        class Handler(QuietHandler):
            def _answer(self) -> None:
                seen = Seen(self.command, self.path, dict(self.headers.items()), self.read_body())
                with service._lock:
                    service.seen.append(seen)
                answer = service._script(seen)
                self.answer(answer.status, answer.body, answer.headers)

            do_GET = do_POST = _answer

        return Handler


def batch_reply(*status_lines: str) -> Answer:
    """A 202 whose changeset holds one part per status line, as the service writes it."""
    parts = "".join(
        "--changesetresponse_x\r\nContent-Type: application/http\r\n"
        f"Content-Transfer-Encoding: binary\r\n\r\n{line}\r\n"
        "X-Content-Type-Options: nosniff\r\nDataServiceVersion: 1.0;\r\n\r\n"
        for line in status_lines)
    body = ("--batchresponse_x\r\nContent-Type: multipart/mixed; boundary=changesetresponse_x"
            f"\r\n\r\n{parts}--changesetresponse_x--\r\n--batchresponse_x--\r\n")
    return Answer(202, body.encode(),
                  {"Content-Type": "multipart/mixed; boundary=batchresponse_x"})
