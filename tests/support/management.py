"""A loopback stand-in for Azure Resource Manager and for the managed identity endpoint
that azure-identity asks on App Service (``IDENTITY_ENDPOINT``/``IDENTITY_HEADER``).

So ``DefaultAzureCredential`` runs for real and gets its token here, and the management
call lands here: each is recorded (method, path, api-version, bearer token) and answered
with the next status of ``statuses``, in turn.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

OPERATOR_OID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
IDENTITY_HEADER = "stand-in-identity-header"
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


@dataclass
class ManagementStandIn:
    statuses: list[int]
    calls: list[Call] = field(default_factory=list)
    token_requests: int = 0
    url: str = ""


@contextmanager
def management_stand_in(statuses: list[int]) -> Iterator[ManagementStandIn]:
    state = ManagementStandIn(list(statuses))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # the App Service managed identity endpoint
            if self.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
                self._answer(401, {"error": "bad identity header"})
                return
            state.token_requests += 1
            self._answer(200, {"access_token": access_token(), "token_type": "Bearer",
                               "expires_on": str(int(time.time()) + 3600),
                               "resource": state.url})

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            state.calls.append(Call(
                "POST", parts.path, parse_qs(parts.query).get("api-version", [""])[0],
                self.headers.get("Authorization", "").removeprefix("Bearer "), time.monotonic()))
            status = state.statuses.pop(0) if state.statuses else 500
            self._answer(status, {} if status == 200 else {
                "error": {"code": _ERRORS.get(status, "Failed"), "message": "stand-in"}})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def use_stand_in(monkeypatch: pytest.MonkeyPatch, stand_in: ManagementStandIn) -> None:
    """Point azure-identity's managed identity and AZURE_RESOURCE_MANAGER_URL at it."""
    monkeypatch.setenv("AZURE_RESOURCE_MANAGER_URL", stand_in.url)
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{stand_in.url}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    for name in ("AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE",
                 "MSI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
