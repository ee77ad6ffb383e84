"""A loopback stand-in for App Service's managed identity endpoint (``IDENTITY_ENDPOINT``
and ``IDENTITY_HEADER``, api-version 2019-08-01), so azure-identity's own
``ManagedIdentityCredential`` runs here: each request gets a new token, and the endpoint
counts them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from tests.support.loopback import LoopbackServer, QuietHandler

HEADER_SECRET = "loopback-identity-header"


class IdentityEndpoint(LoopbackServer):
    """``token(n)`` is the n-th token handed out (``mi-token-<n>`` unless told)."""

    def __init__(self, lifetime: int = 86_400,
                 token: Callable[[int], str] = lambda n: f"mi-token-{n}") -> None:
        self.lifetime = lifetime
        self.token = token
        self.requests: list[str] = []
        super().__init__(self._handler())

    @property
    def url(self) -> str:
        return f"{self.origin}/msi/token"

    def use(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make it azure-identity's managed identity, and the only credential it finds."""
        monkeypatch.setenv("IDENTITY_ENDPOINT", self.url)
        monkeypatch.setenv("IDENTITY_HEADER", HEADER_SECRET)
        for name in ("AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE",
                     "MSI_ENDPOINT"):
            monkeypatch.delenv(name, raising=False)

    def issue(self, handler: QuietHandler) -> None:
        """Answer ``handler``'s token request as App Service does."""
        if handler.headers.get("X-IDENTITY-HEADER") != HEADER_SECRET:
            handler.answer(400)
            return
        self.requests.append(handler.path)
        body = json.dumps({
            "access_token": self.token(len(self.requests)),
            "expires_on": str(int(time.time()) + self.lifetime),
            "resource": "https://storage.azure.com", "token_type": "Bearer",
        }).encode()
        handler.answer(200, body, {"Content-Type": "application/json"})

    def _handler(self) -> type[QuietHandler]:
        endpoint = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                endpoint.issue(self)

        return Handler
