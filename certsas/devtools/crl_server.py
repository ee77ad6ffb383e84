"""A static HTTP server for CRLs on 127.0.0.1, for the local demo and the tests.

    python -m certsas.devtools.crl_server FILE.crl [--port N] [--path /issuing-ca.crl]

Serves each published path's bytes as ``application/pkix-crl``; counts requests. For tests,
settable attributes change the next replies: ``delay_seconds``, ``status``, ``redirect_to``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from certsas.devtools.loopback import LoopbackService

__all__ = ["CrlServer", "main"]


class CrlServer(LoopbackService):
    """Serves ``publish``-ed bytes by path; a 404 for anything else."""

    thread_name = "crl-server"

    def __init__(self, port: int = 0) -> None:
        self.files: dict[str, bytes] = {}
        self.delay_seconds = 0.0
        self.status = 200
        self.redirect_to: str | None = None
        super().__init__(port)

    def url(self, path: str = "/ca.crl") -> str:
        return f"http://127.0.0.1:{self._port}{path}"

    def publish(self, path: str, body: bytes) -> None:
        self.files[path] = body

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)


def _handler_for(server: CrlServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            server.count_request()
            if server.delay_seconds:
                server.pause(server.delay_seconds)
            body = server.files.get(self.path.split("?", 1)[0])
            try:
                if server.redirect_to is not None:
                    self.send_response(302)
                    self.send_header("Location", server.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = server.status if body is not None else 404
                body = body if status == 200 and body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/pkix-crl")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m certsas.devtools.crl_server",
                                     description="Serve a CRL file over HTTP on 127.0.0.1.")
    parser.add_argument("file", type=Path, help="the CRL (DER)")
    parser.add_argument("--path", default="/issuing-ca.crl", help="URL path (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any)")
    args = parser.parse_args(argv)
    try:
        body = args.file.read_bytes()
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    crl_server = CrlServer(args.port)
    crl_server.publish(args.path, body)
    try:
        crl_server.start()
    except OSError as exc:
        print(f"error: cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 1
    with crl_server:
        print(f"serving {args.file} at {crl_server.url(args.path)}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
