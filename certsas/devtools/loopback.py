"""An HTTP service of ours on 127.0.0.1, served from a background thread.

The OCSP responder and the CRL server share this lifecycle: ``start()`` (again on the
same port after a stop), ``stop()`` that really stops (idle keep-alive connections
included), ``with``, and a count of the requests seen.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


class LoopbackServer(ThreadingHTTPServer):
    """Tracks open connections so that a stop really stops: keep-alive included."""

    daemon_threads = True

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Without this an idle keep-alive thread would answer the next request after a stop."""
        with self.connections_lock:
            for connection in self.connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self.connections.clear()


class LoopbackService:
    """Base of a loopback service: subclasses say how to handle a request (:meth:`handler`)."""

    thread_name = "loopback-service"

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._count = 0
        self._count_lock = threading.Lock()
        self._server: LoopbackServer | None = None
        self._thread: threading.Thread | None = None
        # Set while stopping, so that a handler sleeping in a test delay ends at once.
        self._stopping = threading.Event()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def port(self) -> int:
        return self._port

    @property
    def request_count(self) -> int:
        with self._count_lock:
            return self._count

    def count_request(self) -> None:
        with self._count_lock:
            self._count += 1

    def pause(self, seconds: float) -> None:
        """Sleep in a handler, but no longer than until the service stops."""
        self._stopping.wait(seconds)

    def start(self) -> Self:
        """Listen (again, on the same port after a stop) and serve in a background thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = LoopbackServer(self._port, self.handler())
        self._port = server.server_address[1]
        self._server = server
        # A short poll keeps stop() quick; serve_forever checks for shutdown once per poll.
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                                        name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening; requests still sleeping in a delay end at once."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.drop_connections()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
