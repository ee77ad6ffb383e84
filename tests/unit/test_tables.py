"""The lean Table client's pure parts: entity encoding, errors, token renewal, proxy choice."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient

from certsas.accounts import ManagedIdentityAccess, parse_connection_string
from certsas.config import StorageSettings
from certsas.entities import decode_entity, encode_entity, parse_datetime
from certsas.storage import StorageClients
from certsas.tables import (
    STORAGE_SCOPE,
    BearerToken,
    Connections,
    LeanTable,
    _error,
)

CONNECTION = ("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;"
              "EndpointSuffix=core.windows.net")


def test_entities_round_trip_with_the_types_json_alone_would_lose() -> None:
    when = datetime(2026, 11, 23, 14, 5, 6, 789012, tzinfo=UTC)
    entity = {"PartitionKey": "p", "RowKey": "r", "Text": "x", "Flag": True, "Small": 7,
              "Big": 2**40, "Ratio": 0.5, "At": when, "Raw": b"\x00\x01", "Gone": None}
    wire = json.loads(json.dumps(encode_entity(entity)))
    assert wire["At@odata.type"] == "Edm.DateTime" and wire["At"] == "2026-11-23T14:05:06.789012Z"
    assert wire["Big@odata.type"] == "Edm.Int64" and wire["Big"] == str(2**40)
    assert "Small@odata.type" not in wire and "Gone" not in wire
    assert decode_entity(wire) == {k: v for k, v in entity.items() if v is not None}


def test_unknown_property_types_are_refused() -> None:
    with pytest.raises(TypeError, match="'Odd'"):
        encode_entity({"Odd": object()})


def test_service_datetimes_have_seven_fraction_digits_or_none() -> None:
    assert parse_datetime("2026-01-02T03:04:05.1234567Z") == datetime(2026, 1, 2, 3, 4, 5, 123456,
                                                                      tzinfo=UTC)
    assert parse_datetime("2026-01-02T03:04:05Z") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_answers_become_azure_core_errors_with_the_service_code_and_no_body() -> None:
    body = json.dumps({"odata.error": {"code": "TableNotFound",
                                       "message": {"value": "secret-looking detail"}}}).encode()
    missing = _error(404, body, "read")
    assert isinstance(missing, ResourceNotFoundError)
    assert (missing.status_code, getattr(missing, "error_code", None)) == (404, "TableNotFound")
    assert "secret-looking" not in str(missing)
    assert isinstance(_error(409, b"", "insert"), ResourceExistsError)
    other = _error(503, b"not json", "insert")
    assert type(other) is HttpResponseError and getattr(other, "error_code", None) is None


@dataclass(frozen=True)
class Token:
    token: str
    expires_on: int


class FakeCredential:
    """azure-identity's shape: get_token(*scopes) -> AccessToken."""

    def __init__(self, lifetime: int) -> None:
        self.scopes: list[tuple[str, ...]] = []
        self.lifetime = lifetime
        self.now = 1_000_000

    def get_token(self, *scopes: str) -> Token:
        self.scopes.append(scopes)
        return Token(f"token-{len(self.scopes)}", self.now + self.lifetime)


def test_bearer_token_is_fetched_once_for_storage_and_renewed_before_expiry() -> None:
    credential = FakeCredential(lifetime=3600)
    bearer = BearerToken(credential, clock=lambda: credential.now, refresh_margin=300)
    assert bearer.authorization("GET", "/t", "", "date") == "Bearer token-1"
    credential.now += 3000  # 600 s left: still good
    assert bearer.authorization("POST", "/t", "application/json", "date") == "Bearer token-1"
    credential.now += 301  # inside the margin: renewed before the service would refuse it
    assert bearer.authorization("GET", "/t", "", "date") == "Bearer token-2"
    assert credential.scopes == [(STORAGE_SCOPE,), (STORAGE_SCOPE,)]


def test_bearer_tokens_never_go_over_plain_http() -> None:
    bearer = BearerToken(FakeCredential(lifetime=3600))
    with pytest.raises(ValueError, match="https"):
        LeanTable("http://127.0.0.1:1/acct", "T", bearer, Connections("http://127.0.0.1:1", 1))


def test_hot_table_is_lean_unless_a_proxy_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    clients = StorageClients(StorageSettings(parse_connection_string(CONNECTION)))
    assert isinstance(clients.hot_table("Audit"), LeanTable)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert isinstance(clients.hot_table("Audit"), TableClient)
    monkeypatch.setenv("NO_PROXY", "acct.table.core.windows.net")
    assert isinstance(clients.hot_table("Audit"), LeanTable)


def test_managed_identity_gets_bearer_tokens_from_its_credential() -> None:
    access = ManagedIdentityAccess("acct", "https://acct.blob.core.windows.net",
                                   "https://acct.table.core.windows.net", client_id="cid")
    table = StorageClients(StorageSettings(access)).hot_table("Audit")
    assert isinstance(table, LeanTable)
    assert isinstance(table._auth, BearerToken)
    assert type(table._auth._credential).__name__ == "DefaultAzureCredential"
