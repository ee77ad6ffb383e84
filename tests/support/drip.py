"""A peer that drips bytes: what a per-read timeout cannot bound (issue 11, item 1)."""

from __future__ import annotations

import socket
import threading
from types import TracebackType

# Headers one byte at a time, never finishing.
HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\nX-Padding: " + b"a" * 4096
# Headers at once, then a chunked body whose size line never ends.
CHUNKED = (b"HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n", b"1" * 4096)


class DripServer:
    """On 127.0.0.1: reads the request, then sends ``mode``'s bytes one every ``interval``."""

    def __init__(self, mode: str, interval: float = 0.2) -> None:
        self.mode = mode
        self.interval = interval
        self.connections = 0
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ca.crl"

    def _serve(self) -> None:
        self._listener.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                head, trickle = (b"", HEADERS) if self.mode == "headers" else CHUNKED
                conn.sendall(head)
                for byte in trickle:
                    if self._stop.wait(self.interval):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return

    def __enter__(self) -> DripServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join()
