"""The app wired to a real Azurite: called as the Functions host calls it (:class:`Stack`).

:mod:`tests.support.served` puts the same stack behind real sockets and TLS.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from certsas.devtools.pki import Issued
from certsas.devtools.routes import find_route
from certsas.registration import Registration
from certsas.registry import TableRegistry
from certsas.runtime import reset_broker
from tests.support.azurite import Azurite


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: Mapping[str, str]

    @property
    def error(self) -> str | None:
        value = self.body.get("error")
        return str(value) if value is not None else None


def forwarded(issued: Issued) -> dict[str, str]:
    """The header App Service adds: base64 DER."""
    return {"X-ARR-ClientCert": base64.b64encode(issued.der).decode("ascii")}


@dataclass
class Stack:
    """Settings in the environment, tables and containers in Azurite, and the function."""

    env: dict[str, str]
    connection_string: str
    registry: TableRegistry
    blobs: BlobServiceClient
    tables: TableServiceClient
    function: Callable[..., func.HttpResponse] = field(repr=False)

    def register(self, issued: Issued, **kwargs: Any) -> Registration:
        kwargs.setdefault("container", "reports")
        registration = Registration.for_certificate(issued.certificate, **kwargs)
        self.registry.put(registration)
        return registration

    def call(self, headers: Mapping[str, str] | None = None, body: bytes | dict[str, Any] = b"",
             *, method: str = "POST", invocation_id: str = "test-invocation",
             route: str = "token") -> Answer:
        raw = json.dumps(body).encode() if isinstance(body, dict) else body
        request = func.HttpRequest(method=method, url=f"http://localhost:7071/api/{route}",
                                   headers=dict(headers or {}), params={}, body=raw)
        function = self.function if route == "token" else _user_function(route)
        response = function(request, _Context(invocation_id))
        text = response.get_body().decode("utf-8")
        return Answer(response.status_code, json.loads(text) if text else {}, response.headers)

    def token(self, issued: Issued, body: bytes | dict[str, Any] = b"") -> Answer:
        return self.call(forwarded(issued), body)

    def rotate(self, issued: Issued, body: bytes, invocation_id: str = "test-rotate") -> Answer:
        """``POST /api/rotate`` with ``issued`` forwarded (SPEC §4a)."""
        return self.call(forwarded(issued), body, route="rotate", invocation_id=invocation_id)

    def audit_records(self) -> list[dict[str, Any]]:
        table = self.tables.get_table_client(self.env["AUDIT_TABLE_NAME"])
        return [dict(e) for e in table.list_entities()]


@dataclass(frozen=True)
class _Context:
    invocation_id: str


def app_env(azurite: Azurite, trust_bundle: str, tables: tuple[str, str], **extra: str
            ) -> dict[str, str]:
    """Settings for the app against ``azurite``; OCSP off and no registry cache unless ``extra``."""
    env = {
        "TRUSTED_CA_CERTS": trust_bundle,
        "STORAGE_CONNECTION_STRING": azurite.connection_string,
        "CERT_TABLE_NAME": tables[0],
        "AUDIT_TABLE_NAME": tables[1],
        "REVOCATION_MODE": "off",
        "REGISTRY_CACHE_SECONDS": "0",
    }
    env.update(extra)
    return env


def build_stack(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], connection_string: str,
                *, containers: tuple[str, ...] = ("reports", "other")) -> Stack:
    """Settings in the environment, a fresh process broker, both tables and ``containers``."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_broker()
    function = _user_function("token")
    tables = TableServiceClient.from_connection_string(connection_string)
    blobs = BlobServiceClient.from_connection_string(connection_string)
    for name in (env["CERT_TABLE_NAME"], env["AUDIT_TABLE_NAME"]):
        tables.create_table_if_not_exists(name)
    for container in containers:
        if not blobs.get_container_client(container).exists():
            blobs.create_container(container)
    registry = TableRegistry(tables.get_table_client(env["CERT_TABLE_NAME"]))
    return Stack(env, connection_string, registry, blobs, tables, function)


def _user_function(name: str) -> Callable[..., func.HttpResponse]:
    import function_app

    return find_route(function_app.app, name).handler
