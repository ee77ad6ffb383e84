"""A peer that drips bytes: what a per-read timeout cannot bound (issue 11, item 1)."""

from __future__ import annotations

import threading
from types import TracebackType

from tests.support.loopback import LoopbackServer, QuietHandler

# Headers one byte at a time, never finishing.
HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\nX-Padding: " + b"a" * 4096
# Headers at once, then a chunked body whose size line never ends.
CHUNKED = (b"HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n", b"1" * 4096)


class DripServer(LoopbackServer):
    """On 127.0.0.1: reads the request, then sends ``mode``'s bytes one every ``interval``."""

    def __init__(self, mode: str, interval: float = 0.2) -> None:
        self.mode = mode
        self.interval = interval
        self.connections = 0
        self._stop = threading.Event()
        super().__init__(self._handler())

    @property
    def url(self) -> str:
        return f"{self.origin}/ca.crl"

    def _handler(self) -> type[QuietHandler]:
        server = self

        class Handler(QuietHandler):
            def _drip(self) -> None:
                server.connections += 1
                self.read_body()
                self.close_connection = True
                head, trickle = (b"", HEADERS) if server.mode == "headers" else CHUNKED
                try:
                    self.wfile.write(head)
                    for byte in trickle:
                        if server._stop.wait(server.interval):
                            return
                        self.wfile.write(bytes([byte]))
                except OSError:
                    return

            do_GET = do_POST = _drip

        return Handler

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        super().__exit__(kind, exc, tb)
