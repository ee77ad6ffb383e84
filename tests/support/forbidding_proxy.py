"""A loopback proxy in front of Azurite's Table service that refuses to create tables.

Azurite enforces no RBAC, so it cannot show what the Table service does to an operator
whose role (Storage Table Data Contributor on one table) does not include creating
tables: it answers ``POST /<account>/Tables`` with 403 ``AuthorizationPermissionMismatch``.
This proxy answers that request exactly so (status, ``x-ms-error-code`` header, the JSON
error body of the Table service) and forwards everything else unchanged.
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

# The Table service's OData error body, with the code and message of
# https://learn.microsoft.com/rest/api/storageservices/common-rest-api-error-codes
# (AuthorizationPermissionMismatch, 403).
FORBIDDEN_BODY = json.dumps({"odata.error": {
    "code": "AuthorizationPermissionMismatch",
    "message": {"lang": "en-US", "value": "This request is not authorized to perform this "
                                         "operation using this permission.\nRequestId:"
                                         "00000000-0000-0000-0000-000000000000\nTime:"
                                         "2026-11-23T00:00:00.0000000Z"}}}).encode()
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate"}


class ForbiddingTableProxy:
    """``with ForbiddingTableProxy(azurite.table_endpoint) as proxy:`` then use ``proxy.endpoint``;
    ``proxy.refused`` counts the table creations it answered with 403."""

    def __init__(self, upstream_endpoint: str) -> None:
        parts = urlsplit(upstream_endpoint)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.account_path = parts.path.rstrip("/")
        self.refused = 0
        self.forwarded = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.account_path}"

    def __enter__(self) -> ForbiddingTableProxy:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _count(self, refused: bool) -> None:
        with self._lock:
            if refused:
                self.refused += 1
            else:
                self.forwarded += 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: pytest shows the test's own output

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = urlsplit(self.path).path.rstrip("/")
                if self.command == "POST" and path == f"{proxy.account_path}/Tables":
                    proxy._count(refused=True)
                    self._answer(403, "Server failed to authenticate the request.",
                                 {"x-ms-error-code": "AuthorizationPermissionMismatch",
                                  "Content-Type": "application/json;odata=minimalmetadata;"
                                                  "streaming=true;charset=utf-8"},
                                 FORBIDDEN_BODY)
                    return
                proxy._count(refused=False)
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() not in HOP_BY_HOP}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    content = answer.read()
                    self._answer(answer.status, answer.reason,
                                 {k: v for k, v in answer.getheaders()
                                  if k.lower() not in HOP_BY_HOP | {"content-length", "date",
                                                                    "server"}},
                                 content)
                finally:
                    upstream.close()

            def _answer(self, status: int, reason: str, headers: dict[str, str],
                        body: bytes) -> None:
                self.send_response(status, reason)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_MERGE = _relay

        return Handler
