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
import json
from urllib.parse import urlsplit

from tests.support.loopback import QuietHandler, UpstreamProxy

TIMED_OUT = json.dumps({"odata.error": {"code": "OperationTimedOut", "message": {
    "lang": "en-US", "value": "Operation could not be completed within the specified time."}}}
).encode()


class LossyTableProxy(UpstreamProxy):
    """``with LossyTableProxy(azurite.table_endpoint) as proxy:`` then ``proxy.endpoint``; it
    loses the answers to the first ``losses`` stored inserts (a retry's answer never);
    ``proxy.inserts`` lists ``(path, Azurite's status, what the client got)`` per POST."""

    def __init__(self, upstream_endpoint: str, mode: str = "close", losses: int = 1) -> None:
        if mode not in ("close", "timeout"):
            raise ValueError("mode is close or timeout")
        self.mode = mode
        self.losses = losses
        self.inserts: list[tuple[str, int, str]] = []
        self._sent: set[bytes] = set()
        super().__init__(upstream_endpoint, self._handler())

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

    def _handler(self) -> type[QuietHandler]:
        proxy = self

        class Handler(QuietHandler):
            def _relay(self) -> None:
                body = self.read_body()
                relayed = self.relay(proxy.upstream, body)
                if self.command == "POST" and proxy._lose(urlsplit(self.path).path, body,
                                                          relayed.status):
                    if proxy.mode == "close":
                        self.close_connection = True  # stored upstream; the client hears nothing
                        return
                    self.answer(500, TIMED_OUT, {"x-ms-error-code": "OperationTimedOut",
                                                 "Content-Type": "application/json"})
                    return
                self.pass_back(relayed)

            do_GET = do_POST = _relay

        return Handler
