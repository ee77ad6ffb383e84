"""The lean Table client against a real Azurite (Shared Key), and against a stand-in for
Azure on loopback HTTPS (Entra ID bearer tokens, which Azurite does not take over plain HTTP)."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.rest import HttpRequest
from azure.data.tables import TableClient, TableServiceClient
from azure.data.tables._authentication import SharedKeyCredentialPolicy
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

from certsas.accounts import AZURITE_ACCOUNT, AZURITE_KEY
from certsas.devtools.pki import SERVER_AUTH
from certsas.errors import DependencyUnavailable
from certsas.registration import Registration
from certsas.registry import TableRegistryReader
from certsas.tables import API_VERSION, STORAGE_SCOPE, BearerToken, Connections, LeanTable, SharedKey
from tests.support.azurite import Azurite
from tests.support.credentials import CachingCredential
from tests.support.identity_endpoint import IdentityEndpoint
from tests.support.pki import Pki
from tests.support.scripted_table import Answer, ScriptedTable, Seen, batch_reply


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


# --- answers Azurite never gives: a scripted loopback service (Shared Key) ------------


def scripted(service: ScriptedTable, timeout: float = 5.0) -> LeanTable:
    return LeanTable(service.endpoint, "T", SharedKey(AZURITE_ACCOUNT, AZURITE_KEY),
                     Connections(service.endpoint, timeout))


def in_turn(*answers: Answer) -> Callable[[Seen], Answer]:
    queue = list(answers)
    return lambda seen: queue.pop(0) if len(queue) > 1 else queue[0]


BUSY = b'{"odata.error": {"code": "ServerBusy"}}'
INSERT = {"PartitionKey": "p", "RowKey": "r"}
THREE = [("create", {"PartitionKey": "p", "RowKey": f"r{i}"}) for i in range(3)]


@pytest.mark.parametrize("reply", [
    Answer(202),  # no body at all
    batch_reply("HTTP/1.1 204 No Content", "HTTP/1.0 400 Bad Request", "HTTP/1.1 204 No Content"),
    batch_reply("http/1.1 409 Conflict"),
    batch_reply("HTTP/1.1 204 No Content", "HTTP/1.1 204 No Content"),  # one part short
])
def test_a_batch_reply_that_does_not_say_every_insert_was_stored_is_a_failure(
        reply: Answer) -> None:
    with (ScriptedTable(lambda seen: reply) as service,
          pytest.raises(HttpResponseError, match="batch insert answered")):
        scripted(service).submit_transaction(THREE)
    assert len(service.seen) == 1  # a 202 is an answer: not retried


def test_a_batch_reply_with_one_success_part_per_insert_is_written() -> None:
    with ScriptedTable(lambda seen: batch_reply(*["HTTP/1.1 204 No Content"] * 3)) as service:
        scripted(service).submit_transaction(THREE)
    boundary = service.seen[0].headers["Content-Type"].split("boundary=")[1]
    assert service.seen[0].body.count(b"POST ") == 3 and boundary.startswith("batch_")


@pytest.mark.parametrize(("method", "status"), [("GET", 503), ("GET", 429), ("POST", 503),
                                                ("POST", 429)])
def test_retry_after_is_waited_for_within_the_budget(method: str, status: int) -> None:
    entity = Answer(200, ENTITY.encode()) if method == "GET" else Answer(204)
    with ScriptedTable(in_turn(Answer(status, BUSY, {"Retry-After": "1"}), entity)) as service:
        table = scripted(service, timeout=5.0)
        started = time.monotonic()
        table.get_entity("p", "r") if method == "GET" else table.create_entity(INSERT)
        elapsed = time.monotonic() - started
    assert len(service.seen) == 2
    assert 1.0 <= elapsed < 2.5, elapsed


def test_retry_after_as_an_http_date_is_waited_for() -> None:
    when = formatdate(time.time() + 2, usegmt=True)  # whole seconds: 1 to 2 s from now
    with ScriptedTable(in_turn(Answer(503, BUSY, {"Retry-After": when}), Answer(204))) as service:
        started = time.monotonic()
        scripted(service).create_entity(INSERT)
        elapsed = time.monotonic() - started
    assert len(service.seen) == 2 and 0.9 <= elapsed < 2.5, elapsed


def test_a_wait_beyond_the_budget_is_not_made() -> None:
    with ScriptedTable(in_turn(Answer(503, BUSY, {"Retry-After": "30"}), Answer(204))) as service:
        started = time.monotonic()
        with pytest.raises(HttpResponseError) as busy:
            scripted(service, timeout=2.0).create_entity(INSERT)
        elapsed = time.monotonic() - started
    assert (busy.value.status_code, getattr(busy.value, "error_code", None)) == (503, "ServerBusy")
    assert len(service.seen) == 1 and elapsed < 0.5, elapsed


def test_a_409_with_retry_after_is_not_retried() -> None:
    with (ScriptedTable(lambda seen: Answer(409, b"", {"Retry-After": "0"})) as service,
          pytest.raises(ResourceExistsError)):
        scripted(service).create_entity(INSERT)
    assert len(service.seen) == 1


# --- Entra ID: a loopback HTTPS stand-in for the Table service ------------------------

ENTITY = json.dumps({"odata.metadata": "m", "PartitionKey": "p", "RowKey": "r",
                     "At@odata.type": "Edm.DateTime", "At": "2026-01-02T03:04:05.1234567Z"})
DENIED = b'{"odata.error": {"code": "InvalidAuthenticationInfo"}}'


@pytest.fixture
def tls(pki: Pki, tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context for 127.0.0.1 and a client context that trusts it."""
    server_cert = pki.issuing.issue("127.0.0.1", eku=(SERVER_AUTH,), ip_addresses=["127.0.0.1"])
    (tmp_path / "chain.pem").write_bytes(server_cert.pem + pki.issuing.issued.pem)
    (tmp_path / "key.pem").write_bytes(server_cert.key_pem)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "chain.pem", tmp_path / "key.pem")
    return server, ssl.create_default_context(cadata=pki.root.issued.pem.decode("ascii"))


def entra_service(revoked: set[str]) -> Callable[[Seen], Answer]:
    """The Table service to a bearer token: 401 to a revoked one, else the entity or 204."""
    def answer(seen: Seen) -> Answer:
        if seen.headers["Authorization"].removeprefix("Bearer ") in revoked:
            return Answer(401, DENIED, {"WWW-Authenticate": 'Bearer authorization_uri='
                                        '"https://login.microsoftonline.com/t/oauth2/authorize"'})
        if "Garbled" in seen.path:
            return Answer(200, b"<html>a proxy's error page</html>")
        return Answer(200, ENTITY.encode()) if seen.method == "GET" else Answer(204)
    return answer


def test_managed_identity_sends_one_cached_bearer_token_over_https(
        tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    credential = CachingCredential()
    with ScriptedTable(entra_service(set()), tls=tls[0]) as service:
        table = LeanTable(service.endpoint, "Audit", BearerToken(credential, clock=credential.clock),
                          Connections(service.endpoint, 5.0, ssl_context=tls[1]))
        entity = table.get_entity("p", "r")
        table.create_entity({"PartitionKey": "p", "RowKey": "s"})
    assert entity["At"] == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert credential.issued == 1
    assert [r.headers["Authorization"] for r in service.seen] == ["Bearer entra-token-1"] * 2
    assert {r.headers["x-ms-version"] for r in service.seen} == {API_VERSION}
    assert service.seen[0].path == "/acct/Audit(PartitionKey='p',RowKey='r')"
    assert json.loads(service.seen[1].body) == {"PartitionKey": "p", "RowKey": "s"}


def test_a_refused_token_is_replaced_by_a_new_one_and_the_call_recovers(
        tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    # The credential caches as azure-identity does: asked again plainly, it would hand
    # back the very token the service refused.
    credential = CachingCredential()
    revoked = {"entra-token-1"}
    with ScriptedTable(entra_service(revoked), tls=tls[0]) as service:
        table = LeanTable(service.endpoint, "Audit", BearerToken(credential, clock=credential.clock),
                          Connections(service.endpoint, 5.0, ssl_context=tls[1]))
        table.get_entity("p", "r")  # 401, a new token, the same read again: 200
        table.create_entity({"PartitionKey": "p", "RowKey": "s"})
        revoked.add("entra-token-2")
        table.create_entity({"PartitionKey": "p", "RowKey": "t"})  # an insert recovers too
        revoked.add("entra-token-3")
        revoked.add("entra-token-4")  # the new token is refused as well: the 401 stands
        with pytest.raises(HttpResponseError) as refused:
            table.get_entity("p", "r")
    assert (refused.value.status_code, getattr(refused.value, "error_code", None)) == (
        401, "InvalidAuthenticationInfo")
    assert [r.headers["Authorization"].removeprefix("Bearer entra-token-") for r in service.seen
            ] == ["1", "2", "2", "2", "3", "3", "4"]
    assert [r.get("claims") for r in credential.requests] == [None, "{}", "{}", "{}"]


def test_a_garbled_answer_is_a_storage_fault_not_a_crash(
        tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    with ScriptedTable(entra_service(set()), tls=tls[0]) as service:
        table = LeanTable(service.endpoint, "Garbled", BearerToken(CachingCredential()),
                          Connections(service.endpoint, 5.0, ssl_context=tls[1]))
        with pytest.raises(DependencyUnavailable, match="registry read failed: HttpResponseError"):
            TableRegistryReader(table).get("A" * 64)


def test_azure_identity_itself_answers_a_401_with_a_new_token(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The claim CachingCredential stands for, checked against azure-identity's own
    ManagedIdentityCredential and DefaultAzureCredential, talking to a loopback App Service
    identity endpoint: asked plainly they answer from their cache; after a 401 the lean
    client's request (claims "{}") makes them fetch a new token. A day-long token also
    comes with refresh_on (MSAL: half its lifetime), which BearerToken renews at."""
    with IdentityEndpoint() as endpoint:
        endpoint.use(monkeypatch)
        for kind in (ManagedIdentityCredential, DefaultAzureCredential):
            endpoint.requests.clear()
            credential = kind()
            bearer = BearerToken(credential)
            sent = bearer.authorization("GET", "/t", "", "date")
            assert sent == "Bearer mi-token-1"
            assert credential.get_token_info(STORAGE_SCOPE).token == "mi-token-1"  # cached
            assert bearer.refused(sent, None)
            assert bearer.authorization("GET", "/t", "", "date") == "Bearer mi-token-2"
            assert len(endpoint.requests) == 2, kind.__name__
            info = credential.get_token_info(STORAGE_SCOPE)
            assert info.refresh_on is not None and info.refresh_on < info.expires_on - 3600


# --- the same signature as azure-data-tables' own Shared Key policy ------------------

KEYS = ("2026-11-23.07", "d'quote ü+x %20")  # a quote, non-ASCII, a plus, a percent


def table_service(seen: Seen) -> Answer:
    """What the Table service answers the SDK's and the lean client's three calls."""
    if seen.method == "GET":
        body = json.dumps({"odata.metadata": "m", "PartitionKey": KEYS[0], "RowKey": KEYS[1]})
        return Answer(200, body.encode(), {"Content-Type": "application/json;odata=minimalmetadata"})
    if "$batch" in seen.path:
        return batch_reply("HTTP/1.1 204 No Content", "HTTP/1.1 204 No Content")
    return Answer(204, b"", {"Preference-Applied": "return-no-content"})


def three_calls(table: LeanTable | TableClient) -> None:
    table.get_entity(*KEYS)  # the hot point read
    table.create_entity({"PartitionKey": KEYS[0], "RowKey": "insert", "Text": "x"})
    table.submit_transaction([("create", {"PartitionKey": KEYS[0], "RowKey": f"b{i}"})
                              for i in range(2)])


def test_the_lean_client_signs_exactly_as_azure_data_tables_does() -> None:
    """Both ways, for the same request and date: the SDK's SharedKeyCredentialPolicy signs
    what the lean client sent to the same Authorization, and the lean SharedKey signs what
    the SDK sent to the SDK's. If either side changes its string to sign, this fails."""
    policy = SharedKeyCredentialPolicy(  # type: ignore[no-untyped-call]  # the SDK leaves it untyped
        AzureNamedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY))
    ours = SharedKey(AZURITE_ACCOUNT, AZURITE_KEY)
    with ScriptedTable(table_service) as service:
        three_calls(LeanTable(service.endpoint, "Audit", ours,
                              Connections(service.endpoint, 5.0)))
        lean_requests = list(service.seen)
        service.seen.clear()
        connection = (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                      f"AccountKey={AZURITE_KEY};TableEndpoint={service.endpoint};")
        three_calls(TableClient.from_connection_string(connection, "Audit", retry_total=0))
        sdk_requests = list(service.seen)
    origin = service.endpoint.removesuffix("/acct")
    for sent in lean_requests:
        unsigned = {k: v for k, v in sent.headers.items() if k.lower() != "authorization"}
        request = HttpRequest(sent.method, origin + sent.path, headers=unsigned)
        policy.on_request(PipelineRequest(request, PipelineContext(None)))
        assert request.headers["Authorization"] == sent.headers["Authorization"], sent.path
    for sent in sdk_requests:
        signed = ours.authorization(sent.method, sent.path, sent.headers.get("Content-Type", ""),
                                    sent.headers["x-ms-date"])
        assert signed == sent.headers["Authorization"], sent.path
    # The same three requests: the same methods and resource paths, keys encoded alike.
    assert [(r.method, r.path) for r in lean_requests] == [(r.method, r.path) for r in sdk_requests]


def test_keys_with_quotes_and_escapes_round_trip_through_azurite(
        azurite: Azurite, tables: tuple[TableServiceClient, str]) -> None:
    service, name = tables
    table = lean(azurite, name)
    table.create_entity({"PartitionKey": KEYS[0], "RowKey": KEYS[1], "N": 1})
    assert table.get_entity(*KEYS)["N"] == 1
    assert service.get_table_client(name).get_entity(*KEYS)["N"] == 1
