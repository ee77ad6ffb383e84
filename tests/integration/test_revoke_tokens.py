"""``certsas revoke-tokens`` against a loopback management API and a real table (Azurite).

azure-identity's DefaultAzureCredential runs for real: it gets the operator's token from
the stand-in's managed identity endpoint, as it would on an Azure VM or App Service.
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.data.tables import TableClient, TableServiceClient
from azure.identity import DefaultAzureCredential

from certsas.audit import AuditRecord, TableAuditSink
from certsas.cli import incident
from certsas.cli.errors import CliError
from certsas.cli.incident import KIND, Target, confirmed, revoke
from certsas.cli.management import ACTION, API_VERSION, ROLE, ManagementApi
from certsas.config import StorageSettings
from certsas.epoch import read_epoch_id
from tests.support.azurite import Azurite
from tests.support.cli import run
from tests.support.forbidding_proxy import ForbiddingTableProxy
from tests.support.management import OPERATOR_OID, ManagementStandIn, access_token

SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
GROUP = "rg-certsas"
ACCOUNT = "certsasprod01"
ACCOUNT_PATH = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/"
                f"Microsoft.Storage/storageAccounts/{ACCOUNT}/revokeUserDelegationKeys")
ARGS = ("revoke-tokens", "--subscription", SUBSCRIPTION, "--resource-group", GROUP)


@pytest.fixture
def managed_identity_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STORAGE_ACCOUNT_NAME", ACCOUNT)


@pytest.fixture
def tables(azurite: Azurite, fresh_tables: tuple[str, str]) -> TableServiceClient:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    for name in fresh_tables:
        service.create_table(name)
    return service


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.usefixtures("managed_identity_mode")
def test_without_yes_and_without_a_terminal_it_refuses_and_calls_nothing(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with ManagementStandIn([200]) as api:
        api.use(monkeypatch)
        code, out, err = run(capsys, *ARGS)  # pytest's stdin is not a terminal
        assert code == 1 and out == []
        assert one_line(err) == ("certsas revoke-tokens: error: not a terminal, so there is no "
                                 "one to ask: add --yes to revoke")
        assert api.calls == [] and api.token_requests == 0


def test_at_a_terminal_it_asks_and_only_yes_goes_ahead() -> None:
    answers = iter(["", "n", "yes"])
    asked: list[str] = []

    def ask(question: str) -> str:
        asked.append(question)
        return next(answers)

    assert [confirmed("Revoke? [y/N] ", yes=False, interactive=True, ask=ask)
            for _ in range(3)] == [False, False, True]
    assert asked == ["Revoke? [y/N] "] * 3
    assert confirmed("unused", yes=True, interactive=False, ask=ask)


def test_account_key_mode_revokes_nothing_and_explains_key_rotation(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, azurite: Azurite,
        tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STORAGE_CONNECTION_STRING", azurite.connection_string)
    with ManagementStandIn([200]) as api:
        api.use(monkeypatch)
        code, out, err = run(capsys, *ARGS, "--yes")
        assert api.calls == []
    line = one_line(err)
    assert code == 1 and out == []
    assert line.startswith("certsas revoke-tokens: error: nothing revoked: ")
    assert "az storage account keys renew --account-name devstoreaccount1" in line
    assert f"--resource-group {GROUP}" in line and "STORAGE_CONNECTION_STRING" in line
    assert "AccountKey" not in line and azurite.connection_string not in line


@pytest.mark.usefixtures("managed_identity_mode")
def test_403_names_the_role_and_the_action_in_one_line(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with ManagementStandIn([403]) as api:
        api.use(monkeypatch)
        code, out, err = run(capsys, *ARGS, "--yes")
    assert code == 1 and out == []
    line = one_line(err)
    assert f"built-in role {ROLE}" in line and ACTION in line and "AuthorizationFailed" in line
    assert "nothing was revoked" in line
    (call,) = api.calls
    assert (call.method, call.path, call.api_version) == ("POST", ACCOUNT_PATH, API_VERSION)
    assert call.bearer == access_token()  # the operator's own token, from azure-identity
    assert access_token() not in err


@pytest.mark.usefixtures("managed_identity_mode")
@pytest.mark.parametrize(("env", "expected"), [
    ({"AZURE_RESOURCE_MANAGER_URL": "http://management.example.com"},
     "AZURE_RESOURCE_MANAGER_URL must be an https:// URL (e.g. https://management.usgovcloudapi.net)"),
    ({"AZURE_RESOURCE_MANAGER_URL": "http://127.0.0.1:9"},
     "cannot reach the management API at http://127.0.0.1:9 (ConnectionError): nothing was "
     "revoked"),
    ({},  # the stand-in, which answers 500 when it has no other status left
     "the management API answered 500 InternalServerError: nothing was revoked and no epoch "
     "written; run the command again"),
])
def test_management_failures_are_one_line_and_say_nothing_was_revoked(capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch,
                                          env: dict[str, str], expected: str) -> None:
    with ManagementStandIn([]) as api:
        api.use(monkeypatch)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code, out, err = run(capsys, *ARGS, "--yes")
    assert code == 1 and out == []
    assert one_line(err).endswith(expected)


@pytest.mark.parametrize("argv", [
    ("revoke-tokens", "--subscription", "not-a-guid", "--resource-group", GROUP, "--yes"),
    ("revoke-tokens", "--subscription", SUBSCRIPTION, "--resource-group", "bad/group", "--yes"),
    ("revoke-tokens", "--resource-group", GROUP, "--yes"),
])
def test_bad_arguments_are_refused_before_anything_is_called(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        argv: tuple[str, ...]) -> None:
    with ManagementStandIn([200]) as api:
        api.use(monkeypatch)
        code, _, err = run(capsys, *argv)
        assert api.calls == []
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("certsas revoke-tokens: error: ")


@pytest.mark.usefixtures("managed_identity_mode")
def test_revoke_tokens_end_to_end_says_what_it_did_and_from_when(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tables: TableServiceClient, fresh_tables: tuple[str, str]) -> None:
    """The command as an operator runs it: the management stand-in answers 200, the
    operator's token comes from azure-identity; only the tables are Azurite's (through
    incident.account_tables: Azurite takes no bearer token over http)."""
    registry_name, audit_name = fresh_tables
    monkeypatch.setenv("CERT_TABLE_NAME", registry_name)
    monkeypatch.setenv("AUDIT_TABLE_NAME", audit_name)
    asked: list[StorageSettings] = []

    def azurite_tables(storage: StorageSettings) -> tuple[TableClient, TableClient]:
        asked.append(storage)
        return (tables.get_table_client(storage.cert_table),
                tables.get_table_client(storage.audit_table))

    monkeypatch.setattr(incident, "account_tables", azurite_tables)
    with ManagementStandIn([200]) as api:
        api.use(monkeypatch)
        before = datetime.now(UTC).replace(microsecond=0)
        code, out, err = run(capsys, *ARGS, "--yes")
        after = datetime.now(UTC)
    assert (code, err) == (0, "")
    (call,) = api.calls
    assert (call.path, call.api_version, call.bearer) == (ACCOUNT_PATH, API_VERSION,
                                                          access_token())
    assert [(s.access.account_name, s.cert_table, s.audit_table) for s in asked] == [
        (ACCOUNT, registry_name, audit_name)]  # the account the settings name, as the operator

    epoch_id = read_epoch_id(tables.get_table_client(registry_name))
    assert re.fullmatch(r"[0-9a-f]{32}", epoch_id)
    first = re.fullmatch(
        rf"revoked every user delegation key of storage account {ACCOUNT} at "
        r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ): Storage refuses every token signed before then",
        out[0])
    assert first is not None, out
    revoked_at = datetime.strptime(first[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= revoked_at <= after
    assert out[1:] == [
        f"wrote signing epoch {epoch_id} to table {registry_name}: each instance signs with "
        "a new key within REGISTRY_CACHE_SECONDS",
        f"audit record written (operator {OPERATOR_OID}); next: watch clients come back "
        "(docs/operations.md)",
    ]

    (record,) = tables.get_table_client(audit_name).list_entities()
    assert record["Kind"] == KIND and record["RequestId"] == epoch_id
    assert (record["Account"], record["Operator"]) == (ACCOUNT, OPERATOR_OID)
    assert (record["Subscription"], record["ResourceGroup"]) == (SUBSCRIPTION, GROUP)
    assert record["IssuedAt"].replace(microsecond=0) == revoked_at
    assert record["PartitionKey"].startswith(f"{revoked_at:%Y-%m-%d}")


def test_keys_first_then_epoch_then_audit_and_a_failed_call_writes_nothing(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, azurite: Azurite,
        tables: TableServiceClient, fresh_tables: tuple[str, str], tmp_path: Path) -> None:
    registry, audit = (tables.get_table_client(name) for name in fresh_tables)
    target = Target(SUBSCRIPTION, GROUP, ACCOUNT)
    before = datetime.now(UTC) - timedelta(minutes=5)
    sink = TableAuditSink(audit, 16)
    sink.record(token_record(before, "before"))
    with ManagementStandIn([200, 403, 500]) as api:
        api.use(monkeypatch)
        management = ManagementApi(api.origin, DefaultAzureCredential())
        revoked = revoke(management, registry, audit, target)
        written = read_epoch_id(registry)
        assert written == revoked.epoch.epoch_id and revoked.operator == OPERATOR_OID
        for refused in ("AuthorizationFailed", "InternalServerError"):
            with pytest.raises(CliError, match=refused):
                revoke(management, registry, audit, target)
            assert read_epoch_id(registry) == written  # the API said no: no new epoch
        assert [(c.path, c.api_version) for c in api.calls] == [(ACCOUNT_PATH, API_VERSION)] * 3
    sink.record(token_record(datetime.now(UTC) + timedelta(seconds=1), "after"))

    # certsas audit shows the revocation between the tokens issued before and after it.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STORAGE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("AUDIT_TABLE_NAME", fresh_tables[1])
    until = f"{datetime.now(UTC) + timedelta(minutes=5):%Y-%m-%dT%H:%M:%SZ}"
    code, out, _ = run(capsys, "audit", "--since", "1h", "--until", until)
    assert code == 0
    body = out[1:-1]
    assert [line.split()[1][:13] for line in body] == ["A" * 13, "REVOKE-TOKENS", "A" * 13]
    assert f"account {ACCOUNT} revoked by {OPERATOR_OID}" in body[1]
    assert out[-1].startswith("3 ")
    code, out, _ = run(capsys, "audit", "--since", "1h", "--until", until, "--json")
    records = json.loads("\n".join(out))
    assert [r.get("kind", "token") for r in records] == ["token", KIND, "token"]
    assert records[1]["account"] == ACCOUNT and records[1]["operator"] == OPERATOR_OID
    assert records[1]["request_id"] == written


def test_without_a_role_on_the_audit_table_the_record_is_refused_after_keys_and_epoch(
        monkeypatch: pytest.MonkeyPatch, azurite: Azurite, tables: TableServiceClient,
        fresh_tables: tuple[str, str]) -> None:
    """An operator without the append-only role on the audit table (the Bicep grants it
    only to operatorPrincipalId): the keys are revoked and the epoch written, then the
    command says, in one line, that only the audit record is missing (docs/operations.md)."""
    registry_name, audit_name = fresh_tables
    registry = tables.get_table_client(registry_name)
    target = Target(SUBSCRIPTION, GROUP, ACCOUNT)
    with (ForbiddingTableProxy(azurite.table_endpoint, no_inserts_into=(audit_name,)) as proxy,
          ManagementStandIn([200]) as api):
        audit = TableServiceClient.from_connection_string(azurite.connection_string.replace(
            azurite.table_endpoint, proxy.endpoint)).get_table_client(audit_name)
        api.use(monkeypatch)
        with pytest.raises(CliError) as refused:
            revoke(ManagementApi(api.url, DefaultAzureCredential()), registry, audit, target)
        assert len(api.calls) == 1 and proxy.refused == 1
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"the keys of {ACCOUNT} were revoked at ")
    assert message.endswith("and the signing epoch written, but the audit record was not "
                            "(HttpResponseError)")
    assert read_epoch_id(registry) != ""  # the epoch was written before the audit
    assert list(tables.get_table_client(audit_name).list_entities()) == []


def token_record(at: datetime, request_id: str) -> AuditRecord:
    return AuditRecord(time=at, request_id=request_id, thumbprint="A" * 64, subject="CN=client",
                       container="reports", blob=None, permissions="rl",
                       expires_on=at + timedelta(minutes=15), client_address=None,
                       signature_sha256="0" * 64)


class Terminal(io.StringIO):
    """stdin as a terminal, with what the operator types."""

    def isatty(self) -> bool:
        return True


@pytest.mark.usefixtures("managed_identity_mode")
def test_at_a_terminal_a_no_revokes_nothing(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    with ManagementStandIn([200]) as api:
        api.use(monkeypatch)
        code, out, err = run(capsys, *ARGS)
        assert api.calls == []
    assert code == 1 and err == ""
    assert out[-1].endswith("nothing revoked")
    assert f"storage account {ACCOUNT}" in out[0] and "[y/N]" in out[0]
