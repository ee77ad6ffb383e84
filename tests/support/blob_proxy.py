"""A loopback proxy in front of Azurite's Blob service that refuses the first requests as
Storage refuses a SAS it cannot authenticate (a revoked user delegation key, SPEC §2b).

It answers the first ``refuse_first`` requests with 403 and ``x-ms-error-code:
AuthenticationFailed`` and the XML error body of the Blob service (or with ``status`` and
``error_code``: another refusal, or a transient 503 that Storage's own retry repeats), and
relays everything after them unchanged (HEAD included). ``signatures`` keeps a SHA-256 of
every request's ``sig``, so a test sees whether a retry came with a new token, and
``sig_counts`` how many ``sig`` fields each request carried; ``on_refusal`` runs while a
refused request waits for its answer (another thread renewing the token meanwhile).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from tests.support.loopback import LoopbackServer, QuietHandler

# https://learn.microsoft.com/rest/api/storageservices/common-rest-api-error-codes
AUTH_FAILED_MESSAGE = ("Server failed to authenticate the request. Make sure the value of "
                       "Authorization header is formed correctly including the signature.")
AUTH_FAILED_BODY = (
    '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code><Message>'
    f"{AUTH_FAILED_MESSAGE}\nRequestId:00000000-0000-0000-0000-000000000000\n"
    "Time:2026-11-23T00:00:00.0000000Z</Message><AuthenticationErrorDetail>Signature did not "
    "match.</AuthenticationErrorDetail></Error>").encode()


class AuthFailingBlobProxy(LoopbackServer):
    """``with AuthFailingBlobProxy(azurite.blob_endpoint, n) as proxy:`` then ``proxy.endpoint``."""

    def __init__(self, upstream_endpoint: str, refuse_first: int, *, status: int = 403,
                 error_code: str = "AuthenticationFailed",
                 on_refusal: Callable[[], None] | None = None) -> None:
        parts = urlsplit(upstream_endpoint)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.account_path = parts.path.rstrip("/")
        self.refuse_first = refuse_first
        self.refused = 0
        self.forwarded = 0
        self.signatures: list[str] = []
        self.sig_counts: list[int] = []
        self.status, self.error_code, self.on_refusal = status, error_code, on_refusal
        self._lock = threading.Lock()
        super().__init__(self._handler())

    @property
    def endpoint(self) -> str:
        return self.origin + self.account_path

    def _refuse(self, path: str) -> bool:
        signatures = parse_qs(urlsplit(path).query).get("sig", [""])
        with self._lock:
            self.signatures.append(hashlib.sha256(signatures[0].encode()).hexdigest())
            self.sig_counts.append(len(signatures))
            refuse = len(self.signatures) <= self.refuse_first
            if refuse:
                self.refused += 1
            else:
                self.forwarded += 1
            return refuse

    def _handler(self) -> type[QuietHandler]:
        proxy = self

        class Handler(QuietHandler):
            def _relay(self) -> None:
                body = self.read_body()
                if proxy._refuse(self.path):
                    if proxy.on_refusal is not None:
                        proxy.on_refusal()
                    self.answer(proxy.status, AUTH_FAILED_BODY.replace(
                        b"AuthenticationFailed", proxy.error_code.encode()),
                                {"x-ms-error-code": proxy.error_code,
                                 "Content-Type": "application/xml"}, AUTH_FAILED_MESSAGE)
                    return
                self.pass_back(self.relay(proxy.upstream, body))

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _relay

        return Handler
