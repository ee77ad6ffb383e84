"""What every loopback HTTP stand-in in tests/support shares: a threaded server on
127.0.0.1 run as a context manager, writing an answer, and relaying a request upstream."""

from __future__ import annotations

import http.client
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate"}


class LoopbackServer:
    """``with Subclass(...) as server:`` serves ``handler()`` on a free loopback port."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], *,
                 tls: ssl.SSLContext | None = None) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.origin = f"{'https' if tls else 'http'}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: pytest shows the test's own output

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
               reason: str | None = None) -> None:
        self.send_response(status, reason)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def relay(self, upstream: tuple[str, int], body: bytes) -> Relayed:
        """This request, sent on to ``upstream``, and its answer."""
        connection = http.client.HTTPConnection(*upstream, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            skip = HOP_BY_HOP | {"content-length", "date", "server"}
            return Relayed(response.status, response.reason, response.read(),
                           {k: v for k, v in response.getheaders() if k.lower() not in skip})
        finally:
            connection.close()

    def pass_back(self, relayed: Relayed) -> None:
        """Answer with what upstream answered, less hop-by-hop headers."""
        self.answer(relayed.status, relayed.body, relayed.headers, relayed.reason)


@dataclass(frozen=True)
class Relayed:
    status: int
    reason: str
    body: bytes
    headers: dict[str, str]
