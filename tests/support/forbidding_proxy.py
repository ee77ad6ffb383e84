"""Loopback proxies in front of Azurite that refuse some requests and relay the rest.

:class:`RefusingProxy` relays every request and lets a subclass answer some itself
(:meth:`RefusingProxy.refusal`). :class:`ForbiddingTableProxy` refuses to create tables:

Azurite enforces no RBAC, so it cannot show what the Table service does to an operator
whose role (Storage Table Data Contributor on one table) does not include creating
tables: it answers ``POST /<account>/Tables`` with 403 ``AuthorizationPermissionMismatch``.
This proxy answers that request exactly so (status, ``x-ms-error-code`` header, the JSON
error body of the Table service) and forwards everything else unchanged.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from certsas.devtools.loopback import LoopbackService

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


# What a proxy answers instead of relaying: status, reason, headers, body.
Canned = tuple[int, str, dict[str, str], bytes]


class RefusingProxy(LoopbackService):
    """``with Proxy(azurite.table_endpoint) as proxy:`` (or ``start()``) then use
    ``proxy.endpoint``; ``proxy.refused`` counts the requests it answered itself,
    ``proxy.forwarded`` the rest."""

    thread_name = "refusing-proxy"

    def __init__(self, upstream_endpoint: str) -> None:
        super().__init__()
        parts = urlsplit(upstream_endpoint)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.account_path = parts.path.rstrip("/")
        self.refused = 0
        self.forwarded = 0
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.account_path}"

    def _tally(self, refused: bool) -> None:
        with self._lock:
            if refused:
                self.refused += 1
            else:
                self.forwarded += 1

    def refusal(self, method: str, path: str, headers: Mapping[str, str]) -> Canned | None:
        """The answer to give instead of relaying the request (called under no lock)."""
        return None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: pytest shows the test's own output

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                canned = proxy.refusal(self.command, self.path, dict(self.headers.items()))
                if canned is not None:
                    proxy._tally(refused=True)
                    self._answer(*canned)
                    return
                proxy._tally(refused=False)
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

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_MERGE = _relay

        return Handler


class ForbiddingTableProxy(RefusingProxy):
    """Refuses ``POST /<account>/Tables`` as the Table service refuses a role without the
    right to create tables."""

    def refusal(self, method: str, path: str, headers: Mapping[str, str]) -> Canned | None:
        if method == "POST" and urlsplit(path).path.rstrip("/") == f"{self.account_path}/Tables":
            return (403, "Server failed to authenticate the request.",
                    {"x-ms-error-code": "AuthorizationPermissionMismatch",
                     "Content-Type": "application/json;odata=minimalmetadata;"
                                     "streaming=true;charset=utf-8"},
                    FORBIDDEN_BODY)
        return None


# Blob's refusal of a SAS it cannot authenticate (a revoked user delegation key, a bad
# signature): https://learn.microsoft.com/rest/api/storageservices/common-rest-api-error-codes
AUTH_FAILED_MESSAGE = ("Server failed to authenticate the request. Make sure the value of "
                       "Authorization header is formed correctly including the signature.")
AUTH_FAILED_BODY = (
    '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code><Message>'
    f"{AUTH_FAILED_MESSAGE}\nRequestId:00000000-0000-0000-0000-000000000000\n"
    "Time:2026-11-23T00:00:00.0000000Z</Message><AuthenticationErrorDetail>Signature did not "
    "match.</AuthenticationErrorDetail></Error>").encode()


class AuthFailingBlobProxy(RefusingProxy):
    """In front of Blob: answers the first ``refuse_first`` requests with 403
    ``AuthenticationFailed``; ``signatures`` holds a SHA-256 of each request's ``sig``."""

    def __init__(self, upstream_endpoint: str, refuse_first: int) -> None:
        super().__init__(upstream_endpoint)
        self.refuse_first = refuse_first
        self.signatures: list[str] = []

    def refusal(self, method: str, path: str, headers: Mapping[str, str]) -> Canned | None:
        signature = parse_qs(urlsplit(path).query).get("sig", [""])[0]
        with self._lock:
            self.signatures.append(hashlib.sha256(signature.encode()).hexdigest())
            refuse = len(self.signatures) <= self.refuse_first
        if not refuse:
            return None
        return (403, AUTH_FAILED_MESSAGE, {"x-ms-error-code": "AuthenticationFailed",
                                           "Content-Type": "application/xml"}, AUTH_FAILED_BODY)
