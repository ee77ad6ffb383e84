"""A loopback proxy in front of Azurite's Table service that loses the answer to the first
insert: the insert reaches Azurite and is stored, and the client never hears so.

``mode="close"`` drops the connection without a word (a reset on the way back);
``mode="timeout"`` answers 500 ``OperationTimedOut``, which the Table service documents
as "the operation may or may not have succeeded"
(https://learn.microsoft.com/rest/api/storageservices/common-rest-api-error-codes) and
which the SDK retries for a POST. Every later request is forwarded unchanged, so the
client's retry meets its own row and gets Azurite's real 409.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

from tests.support.forbidding_proxy import HOP_BY_HOP

TIMED_OUT = json.dumps({"odata.error": {"code": "OperationTimedOut", "message": {
    "lang": "en-US", "value": "Operation could not be completed within the specified time."}}}
).encode()


class LossyTableProxy:
    """``with LossyTableProxy(azurite.table_endpoint) as proxy:`` then ``proxy.endpoint``; it
    loses the answers to the first ``losses`` stored inserts (a retry's answer never);
    ``proxy.inserts`` lists ``(path, Azurite's status, what the client got)`` per POST."""

    def __init__(self, upstream_endpoint: str, mode: str = "close", losses: int = 1) -> None:
        if mode not in ("close", "timeout"):
            raise ValueError("mode is close or timeout")
        parts = urlsplit(upstream_endpoint)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.account_path = parts.path.rstrip("/")
        self.mode = mode
        self.losses = losses
        self.inserts: list[tuple[str, int, str]] = []
        self._sent: set[bytes] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.account_path}"

    def __enter__(self) -> LossyTableProxy:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _lose(self, path: str, body: bytes, status: int) -> bool:
        """Lose the answer to a stored insert's first attempt (never to its retry)."""
        digest = hashlib.sha256(body).digest()
        with self._lock:
            lose = self.losses > 0 and 200 <= status < 300 and digest not in self._sent
            self._sent.add(digest)
            if lose:
                self.losses -= 1
            self.inserts.append((path, status, self.mode if lose else "forwarded"))
            return lose

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() not in HOP_BY_HOP}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    content = answer.read()
                finally:
                    upstream.close()
                if self.command == "POST" and proxy._lose(urlsplit(self.path).path, body,
                                                                answer.status):
                    if proxy.mode == "close":
                        self.close_connection = True  # stored upstream; the client hears nothing
                        return
                    self._answer(500, "Operation timed out", {"x-ms-error-code": "OperationTimedOut",
                                 "Content-Type": "application/json"}, TIMED_OUT)
                    return
                self._answer(answer.status, answer.reason,
                             {k: v for k, v in answer.getheaders()
                              if k.lower() not in HOP_BY_HOP | {"content-length", "date",
                                                                "server"}},
                             content)

            def _answer(self, status: int, reason: str, headers: dict[str, str],
                        body: bytes) -> None:
                self.send_response(status, reason)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _relay

        return Handler
