"""A loopback stand-in for Azure Resource Manager that is also the managed identity endpoint
azure-identity asks on App Service (:class:`~tests.support.identity_endpoint.IdentityEndpoint`).

So ``DefaultAzureCredential`` runs for real and gets its token here, and the management
call lands here: each is recorded (method, path, api-version, bearer token) and answered
with the next status of ``statuses``, in turn (500 once they run out).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.identity_endpoint import IdentityEndpoint
from tests.support.loopback import QuietHandler

OPERATOR_OID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
_ERRORS = {403: "AuthorizationFailed", 404: "ResourceNotFound", 500: "InternalServerError"}


def access_token(oid: str = OPERATOR_OID) -> str:
    """A JWT-shaped token with an ``oid`` claim (unsigned: nothing here verifies it)."""
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'none'})}.{part({'oid': oid, 'aud': 'arm'})}.c2ln"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    api_version: str
    bearer: str
    at: float


class ManagementStandIn(IdentityEndpoint):
    """``with ManagementStandIn([200, 403]) as api:``; ``api.origin`` is the management
    endpoint, ``api.url`` the identity endpoint, ``api.calls`` what was asked of it."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.calls: list[Call] = []
        super().__init__(lifetime=3600, token=lambda _: access_token())

    @property
    def token_requests(self) -> int:
        return len(self.requests)

    def use(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point azure-identity's managed identity and AZURE_RESOURCE_MANAGER_URL at it."""
        super().use(monkeypatch)
        monkeypatch.setenv("AZURE_RESOURCE_MANAGER_URL", self.origin)

    def _handler(self) -> type[QuietHandler]:
        api = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                api.issue(self)

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                api.calls.append(Call(
                    "POST", parts.path, parse_qs(parts.query).get("api-version", [""])[0],
                    self.headers.get("Authorization", "").removeprefix("Bearer "),
                    time.monotonic()))
                self.read_body()
                status = api.statuses.pop(0) if api.statuses else 500
                body = {} if status == 200 else {
                    "error": {"code": _ERRORS.get(status, "Failed"), "message": "stand-in"}}
                self.answer(status, json.dumps(body).encode(),
                            {"Content-Type": "application/json"})

        return Handler
