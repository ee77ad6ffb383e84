"""The lean Table client against a real Azurite (Shared Key), and against a stand-in for
Azure on loopback HTTPS (Entra ID bearer tokens, which Azurite does not take over plain HTTP)."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.data.tables import TableServiceClient

from certsas.accounts import AZURITE_ACCOUNT, AZURITE_KEY
from certsas.devtools.pki import SERVER_AUTH
from certsas.errors import DependencyUnavailable
from certsas.registry import Registration, TableRegistryReader
from certsas.tables import API_VERSION, STORAGE_SCOPE, BearerToken, Connections, LeanTable, SharedKey
from tests.support.azurite import Azurite
from tests.support.pki import Pki


@pytest.fixture
def tables(azurite: Azurite, fresh_tables: tuple[str, str]) -> tuple[TableServiceClient, str]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    service.create_table(fresh_tables[1])
    return service, fresh_tables[1]


def lean(azurite: Azurite, table: str) -> LeanTable:
    endpoint = azurite.table_endpoint
    return LeanTable(endpoint, table, SharedKey(AZURITE_ACCOUNT, AZURITE_KEY),
                     Connections(endpoint, 5.0))


def test_an_insert_reads_back_through_the_sdk_property_for_property(
        azurite: Azurite, tables: tuple[TableServiceClient, str]) -> None:
    service, name = tables
    when = datetime(2026, 11, 23, 14, 5, 6, 789000, tzinfo=UTC)
    lean(azurite, name).create_entity({"PartitionKey": "2026-11-23", "RowKey": "a", "Text": "x",
                                       "Flag": True, "Count": 7, "Big": 2**40, "At": when})
    stored = service.get_table_client(name).get_entity("2026-11-23", "a")
    assert (stored["Text"], stored["Flag"], stored["Count"]) == ("x", True, 7)
    assert stored["Big"].value == 2**40  # the SDK wraps Int64 in an EntityProperty
    assert stored["At"] == when


def test_a_registration_written_by_the_cli_reads_back_equal(
        azurite: Azurite, tables: tuple[TableServiceClient, str], pki: Pki) -> None:
    service, name = tables
    registration = Registration.for_certificate(pki.client.certificate, container="reports",
                                                permissions="rl", description="d'quote")
    service.get_table_client(name).create_entity(registration.to_entity())
    reader = TableRegistryReader(lean(azurite, name))
    assert reader.get(registration.thumbprint) == registration
    assert reader.get("F" * 64) is None


def test_a_missing_table_is_named_as_such(azurite: Azurite) -> None:
    with pytest.raises(DependencyUnavailable, match="registry table does not exist"):
        TableRegistryReader(lean(azurite, "NoSuchTable0")).get("A" * 64)
    with pytest.raises(ResourceNotFoundError):
        lean(azurite, "NoSuchTable0").create_entity({"PartitionKey": "p", "RowKey": "r"})


def test_a_batch_stores_all_or_nothing(azurite: Azurite,
                                       tables: tuple[TableServiceClient, str]) -> None:
    service, name = tables
    table = lean(azurite, name)
    table.submit_transaction([("create", {"PartitionKey": "p", "RowKey": f"r{i}", "N": i})
                              for i in range(3)])
    with pytest.raises(ResourceExistsError):
        table.create_entity({"PartitionKey": "p", "RowKey": "r1"})
    with pytest.raises(AzureError):  # r2 exists: the whole group is refused
        table.submit_transaction([("create", {"PartitionKey": "p", "RowKey": "r9"}),
                                  ("create", {"PartitionKey": "p", "RowKey": "r2"})])
    rows = sorted(e["RowKey"] for e in service.get_table_client(name).list_entities())
    assert rows == ["r0", "r1", "r2"]


# --- Entra ID: a loopback HTTPS stand-in for the Table service -----------------------


@dataclass(frozen=True)
class Token:
    token: str
    expires_on: int


class FakeCredential:
    def __init__(self) -> None:
        self.calls = 0

    def get_token(self, *scopes: str) -> Token:
        assert scopes == (STORAGE_SCOPE,)
        self.calls += 1
        return Token(f"entra-token-{self.calls}", 2_000_000_000)


class FakeTableService(BaseHTTPRequestHandler):
    seen: list[dict[str, str]]

    def do_GET(self) -> None:
        self.seen.append({"method": "GET", "path": self.path, **dict(self.headers.items())})
        if "Garbled" in self.path:
            self._answer(200, b"<html>a proxy's error page</html>")
            return
        if "Denied" in self.path:
            self._answer(401, b'{"odata.error": {"code": "InvalidAuthenticationInfo"}}')
            return
        body = json.dumps({"odata.metadata": "m", "PartitionKey": "p", "RowKey": "r",
                           "At@odata.type": "Edm.DateTime", "At": "2026-01-02T03:04:05.1234567Z"})
        self._answer(200, body.encode())

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.seen.append({"method": "POST", "path": self.path, "body": self.rfile.read(length).decode(),
                          **dict(self.headers.items())})
        self._answer(204, b"")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def https_service(pki: Pki, tmp_path: Path) -> Iterator[tuple[str, list[dict[str, str]], ssl.SSLContext]]:
    server_cert = pki.issuing.issue("127.0.0.1", eku=(SERVER_AUTH,), ip_addresses=["127.0.0.1"])
    (tmp_path / "chain.pem").write_bytes(server_cert.pem + pki.issuing.issued.pem)
    (tmp_path / "key.pem").write_bytes(server_cert.key_pem)
    seen: list[dict[str, str]] = []
    handler = type("Handler", (FakeTableService,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "chain.pem", tmp_path / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = ssl.create_default_context(cadata=pki.root.issued.pem.decode("ascii"))
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", seen, client
    finally:
        server.shutdown()
        server.server_close()


def test_managed_identity_sends_one_cached_bearer_token_over_https(
        https_service: tuple[str, list[dict[str, str]], ssl.SSLContext]) -> None:
    endpoint, seen, context = https_service
    credential = FakeCredential()
    table = LeanTable(endpoint, "Audit", BearerToken(credential),
                      Connections(endpoint, 5.0, ssl_context=context))
    entity = table.get_entity("p", "r")
    table.create_entity({"PartitionKey": "p", "RowKey": "s"})
    assert entity["At"] == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert credential.calls == 1
    assert [r["Authorization"] for r in seen] == ["Bearer entra-token-1"] * 2
    assert {r["x-ms-version"] for r in seen} == {API_VERSION}
    assert seen[0]["path"] == "/Audit(PartitionKey='p',RowKey='r')"
    assert json.loads(seen[1]["body"]) == {"PartitionKey": "p", "RowKey": "s"}



def test_a_refused_token_is_dropped_and_the_next_call_fetches_another(
        https_service: tuple[str, list[dict[str, str]], ssl.SSLContext]) -> None:
    endpoint, seen, context = https_service
    credential = FakeCredential()
    connections = Connections(endpoint, 5.0, ssl_context=context)
    bearer = BearerToken(credential)
    with pytest.raises(HttpResponseError) as refused:
        LeanTable(endpoint, "Denied", bearer, connections).get_entity("p", "r")
    assert (refused.value.status_code, getattr(refused.value, "error_code", None)) == (
        401, "InvalidAuthenticationInfo")
    LeanTable(endpoint, "Audit", bearer, connections).get_entity("p", "r")
    assert [r["Authorization"] for r in seen] == ["Bearer entra-token-1", "Bearer entra-token-2"]


def test_a_garbled_answer_is_a_storage_fault_not_a_crash(
        https_service: tuple[str, list[dict[str, str]], ssl.SSLContext]) -> None:
    endpoint, _, context = https_service
    table = LeanTable(endpoint, "Garbled", BearerToken(FakeCredential()),
                      Connections(endpoint, 5.0, ssl_context=context))
    with pytest.raises(DependencyUnavailable, match="registry read failed: HttpResponseError"):
        TableRegistryReader(table).get("A" * 64)
