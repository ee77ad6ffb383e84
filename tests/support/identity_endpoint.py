"""A loopback stand-in for App Service's managed identity endpoint (``IDENTITY_ENDPOINT``
and ``IDENTITY_HEADER``, api-version 2019-08-01), so azure-identity's own
``ManagedIdentityCredential`` runs here: each request gets a new token, and the endpoint
counts them."""

from __future__ import annotations

import json
import time

from tests.support.loopback import LoopbackServer, QuietHandler

HEADER_SECRET = "loopback-identity-header"


class IdentityEndpoint(LoopbackServer):
    def __init__(self, lifetime: int = 86_400) -> None:
        self.lifetime = lifetime
        self.requests: list[str] = []
        super().__init__(self._handler())

    @property
    def url(self) -> str:
        return f"{self.origin}/msi/token"

    def _handler(self) -> type[QuietHandler]:
        endpoint = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                if self.headers.get("X-IDENTITY-HEADER") != HEADER_SECRET:
                    self.answer(400)
                    return
                endpoint.requests.append(self.path)
                body = json.dumps({
                    "access_token": f"mi-token-{len(endpoint.requests)}",
                    "expires_on": str(int(time.time()) + endpoint.lifetime),
                    "resource": "https://storage.azure.com", "token_type": "Bearer",
                }).encode()
                self.answer(200, body, {"Content-Type": "application/json"})

        return Handler
