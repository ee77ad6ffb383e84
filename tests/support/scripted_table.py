"""A loopback stand-in for the Table service that answers from a script and records what
it was sent: for the answers Azurite never gives (a 503 with ``Retry-After``, a 401 to an
Entra ID token, a batch reply that is not what the service writes)."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


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


class ScriptedTable:
    """``with ScriptedTable(script) as service:`` then ``service.endpoint``; ``service.seen``
    lists every request, in order. ``script`` chooses each answer from the request."""

    def __init__(self, script: Script, *, tls: ssl.SSLContext | None = None) -> None:
        self.seen: list[Seen] = []
        self._script = script
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._scheme = "https" if tls is not None else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self._server.server_address[1]}/acct"

    def __enter__(self) -> ScriptedTable:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, dict(self.headers.items()),
                            self.rfile.read(length) if length else b"")
                with service._lock:
                    service.seen.append(seen)
                answer = service._script(seen)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

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
