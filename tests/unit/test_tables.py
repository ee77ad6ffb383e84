"""The lean Table client's pure parts: entity encoding, errors, keys, Retry-After, proxy choice."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import formatdate

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient

from certsas.accounts import ManagedIdentityAccess, parse_connection_string
from certsas.config import StorageSettings
from certsas.entities import decode_entity, encode_entity, parse_datetime
from certsas.storage import StorageClients
from certsas.tables import (
    BearerToken,
    Connections,
    LeanTable,
    SharedKey,
    _error,
    retry_after,
)
from tests.support.credentials import CachingCredential

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


def test_bearer_tokens_never_go_over_plain_http() -> None:
    bearer = BearerToken(CachingCredential())
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


def test_a_lone_surrogate_in_a_key_is_a_clear_value_error() -> None:
    table = LeanTable("http://127.0.0.1:1/acct", "T", SharedKey("acct", "a2V5"),
                      Connections("http://127.0.0.1:1", 1))
    calls: list[Callable[[], object]] = [
        lambda: table.get_entity("p", "r\ud800"),
        lambda: table.get_entity("\udfff", "r"),
        lambda: table.create_entity({"PartitionKey": "p", "RowKey": "\ud800x"}),
        lambda: table.submit_transaction([("create", {"PartitionKey": "p", "RowKey": "a"}),
                                          ("create", {"PartitionKey": "\ud800", "RowKey": "b"})]),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="lone surrogate") as refused:
            call()  # refused before any connection is made (port 1 answers nothing)
        assert type(refused.value) is ValueError


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after("2") == 2.0
    assert retry_after("0.5") == 0.5
    assert retry_after("-3") == 0.0
    assert retry_after(None) is None and retry_after("") is None and retry_after("soon") is None
    later = retry_after(formatdate(time.time() + 30, usegmt=True))
    assert later is not None and 28 <= later <= 30
    assert retry_after(formatdate(time.time() - 30, usegmt=True)) == 0.0
