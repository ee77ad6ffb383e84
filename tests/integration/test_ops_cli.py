"""``certsas list --expiring/--json`` and ``certsas audit`` against Azurite (SPEC §6)."""

from __future__ import annotations

import json
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from azure.data.tables import TableClient

from certsas.cli.audit import build_query, fetch
from tests.support.azurite import Azurite
from tests.support.cli import run
from tests.support.pki import Pki
from tests.support.stack import Stack, app_env, build_stack

A, B = "A1" * 32, "B2" * 32


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads("\n".join(out))


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite: Azurite, pki: Pki,
          fresh_tables: tuple[str, str]) -> Stack:
    """The app's settings in the environment (the CLI reads the same), four audit shards,
    and a folder with no local.settings.json."""
    monkeypatch.chdir(tmp_path)
    return build_stack(monkeypatch, app_env(azurite, pki.trust_bundle, fresh_tables,
                                            AUDIT_PARTITIONS="4"),
                       azurite.connection_string)


def audit_table(stack: Stack) -> TableClient:
    return stack.tables.get_table_client(stack.env["AUDIT_TABLE_NAME"])


def in_days(days: int) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=days, hours=1)


# --- list ---------------------------------------------------------------------------------


def test_list_expiring_includes_the_expired_soonest_first(
        capsys: pytest.CaptureFixture[str], stack: Stack, pki: Pki) -> None:
    soon = stack.register(pki.issuing.issue("in-10", not_after=in_days(10)),
                          description="exporter", prefix="out/")
    later = stack.register(pki.issuing.issue("in-100", not_after=in_days(100)))
    gone = stack.register(pki.issuing.issue("gone", not_after=in_days(-1),
                                            not_before=in_days(-300)))
    off = stack.register(pki.issuing.issue("off-in-5", not_after=in_days(5)))
    stack.registry.put(replace(off, enabled=False))
    stack.tables.get_table_client(stack.env["CERT_TABLE_NAME"]).create_entity(
        {"PartitionKey": "EE" * 32, "RowKey": "certificate"})

    code, out, err = run(capsys, "list", "--expiring", "30")
    assert code == 0
    assert "EE" * 32 in err and "cannot be read (KeyError)" in err
    assert [line[:64] for line in out[1:-1]] == [gone.thumbprint, off.thumbprint, soon.thumbprint]
    assert re.search(r" -1  CN=gone,", out[1]) and re.search(r" 10  CN=in-10,", out[3])
    assert out[2][66:69] == "no " and out[-1] == "3 registration(s)"

    listed = run_json(capsys, "list", "--expiring", "30")
    assert [(r["thumbprint"], r["days_left"], r["enabled"]) for r in listed] == [
        (gone.thumbprint, -1, True), (off.thumbprint, 5, False), (soon.thumbprint, 10, True)]
    assert listed[2] == {
        "thumbprint": soon.thumbprint, "thumbprint_sha1": soon.thumbprint_sha1,
        "subject": soon.subject, "issuer": soon.issuer, "serial": soon.serial,
        "not_before": soon.not_before.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": soon.not_after.strftime("%Y-%m-%dT%H:%M:%SZ"), "days_left": 10,
        "container": "reports", "prefix": "out/", "permissions": "rl",
        "max_ttl_minutes": 60, "enabled": True, "description": "exporter",
        "grants": [{"container": "reports", "prefix": "out/", "permissions": "rl",
                    "max_ttl_minutes": 60}],
        "allow_rotation": False, "rotated_from": None}
    # show --json: the same object, with the certificate.
    shown = run_json(capsys, "show", soon.thumbprint_sha1)
    assert shown == {**listed[2], "certificate_pem": soon.certificate_pem}

    everything = run_json(capsys, "list")
    assert {r["thumbprint"] for r in everything} == {
        soon.thumbprint, later.thumbprint, gone.thumbprint, off.thumbprint}
    assert [r["thumbprint"] for r in run_json(capsys, "list", "--expiring", "1")] == [
        gone.thumbprint]


def test_list_with_nothing_expiring_says_so(capsys: pytest.CaptureFixture[str], stack: Stack,
                                            pki: Pki) -> None:
    stack.register(pki.issuing.issue("in-100", not_after=in_days(100)))
    assert run(capsys, "list", "--expiring", "30")[:2] == (
        0, ["no registrations expiring within 30 days"])
    assert run_json(capsys, "list", "--expiring", "30") == []
    assert run(capsys, "list", "--expiring", "0")[0] == 2  # at least one day


# --- audit --------------------------------------------------------------------------------


def test_tokens_under_load_spread_over_the_shards_and_audit_lists_them_oldest_first(
        capsys: pytest.CaptureFixture[str], stack: Stack, pki: Pki) -> None:
    client = pki.issuing.issue("auditee")
    registration = stack.register(client)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: stack.token(client), range(40)))
    for _ in range(4):  # single writes take the shards in turn
        answers.append(stack.token(client))
    assert {a.status for a in answers} == {200}

    today = datetime.now(UTC).strftime("%Y-%m-%d")
    shards = Counter(e["PartitionKey"] for e in audit_table(stack).list_entities())
    assert set(shards) <= {f"{today}.{n:02d}" for n in range(4)}
    assert len(shards) >= 2 and sum(shards.values()) == 44

    records = run_json(capsys, "audit")
    assert len(records) == 44
    assert [r["issued_at"] for r in records] == sorted(r["issued_at"] for r in records)
    assert {r["thumbprint"] for r in records} == {registration.thumbprint}
    assert set(records[0]) == {"issued_at", "request_id", "thumbprint", "subject", "container",
                               "blob", "permissions", "expires_on", "client_address",
                               "signature_sha256", "kind", "grant_prefix", "successor"}
    assert (records[0]["kind"], records[0]["grant_prefix"], records[0]["successor"]) == (
        "token", None, None)

    code, out, _ = run(capsys, "audit", "--since", "1h")
    assert code == 0 and len(out) == 46
    assert out[0].startswith("ISSUED") and out[-1].startswith("44 token(s) issued from ")
    assert registration.thumbprint in out[1] and "reports" in out[1]


def record(partition: str, when: datetime, thumbprint: str = A, container: str = "reports",
           n: int = 0) -> dict[str, Any]:
    return {"PartitionKey": partition, "RowKey": f"{when:%H%M%S}-{n}", "IssuedAt": when,
            "RequestId": f"req-{partition}-{n}", "Thumbprint": thumbprint, "Subject": "CN=x",
            "Container": container, "Blob": "", "Permissions": "r",
            "ExpiresOn": when + timedelta(minutes=15), "ClientAddress": "",
            "SignatureSha256": "00" * 32}


def nov(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


@pytest.fixture
def history(stack: Stack) -> Stack:
    """Records of 31 Oct to 3 Nov: plain day keys from earlier versions and shards."""
    table = audit_table(stack)
    for entity in (
        record("2026-10-31.02", nov(1, 0) - timedelta(minutes=1), n=1),
        record("2026-11-01", nov(1, 23), B, "other", n=2),  # old key, late in the day
        record("2026-11-01", nov(1, 2), A, n=3),  # old key
        record("2026-11-01.03", nov(1, 1), B, n=4),
        record("2026-11-02.00", nov(2, 12), A, "other", n=5),
        record("2026-11-03.01", nov(3, 0), A, n=6),
    ):
        table.create_entity(entity)
    return stack


def request_ids(records: list[dict[str, Any]]) -> list[str]:
    return [str(r["request_id"]).rsplit("-", 1)[1] for r in records]


def test_a_day_range_reads_old_and_sharded_keys_oldest_first(
        capsys: pytest.CaptureFixture[str], history: Stack) -> None:
    span = ("--since", "2026-11-01", "--until", "2026-11-03")
    assert request_ids(run_json(capsys, "audit", *span)) == ["4", "3", "2", "5"]
    assert request_ids(run_json(capsys, "audit", "--since", "2026-10-31T23:00:00Z",
                                "--until", "2026-11-01T02:00:00Z")) == ["1", "4"]
    assert request_ids(run_json(capsys, "audit", "--since", "2026-11-03",
                                "--until", "2026-11-04")) == ["6"]
    assert request_ids(run_json(capsys, "audit", *span, "--container", "other")) == ["2", "5"]
    colons = ":".join(B[i:i + 2] for i in range(0, 64, 2)).lower()
    assert request_ids(run_json(capsys, "audit", *span, "--thumbprint", colons)) == ["4", "2"]
    assert request_ids(run_json(capsys, "audit", *span, "--thumbprint", A,
                                "--container", "other")) == ["5"]
    code, out, _ = run(capsys, "audit", *span, "--container", "nothing-here")
    assert (code, out) == (0, ["no tokens issued from 2026-11-01T00:00:00Z "
                               "to 2026-11-03T00:00:00Z"])


def test_a_sha1_thumbprint_is_resolved_through_the_registry(
        capsys: pytest.CaptureFixture[str], history: Stack, pki: Pki) -> None:
    registration = history.register(pki.issuing.issue("sha1-user"))
    audit_table(history).create_entity(
        record("2026-11-02.03", nov(2, 8), registration.thumbprint, n=7))
    found = run_json(capsys, "audit", "--since", "2026-11-01", "--until", "2026-11-03",
                     "--thumbprint", registration.thumbprint_sha1.lower())
    assert request_ids(found) == ["7"]
    code, _, err = run(capsys, "audit", "--thumbprint", "C3" * 20)
    assert code == 1
    assert err.strip() == (f"certsas audit: error: SHA-1 {'C3' * 20} is not registered "
                           "(any more): give the SHA-256 thumbprint")


def test_the_query_sent_is_a_partition_key_range_with_quoted_values(history: Stack) -> None:
    sent: list[str] = []

    def hook(request: Any) -> None:
        sent.append(parse_qs(urlparse(request.http_request.url).query)["$filter"][0])

    query = build_query(nov(1, 0), nov(3, 0), container="x' or PartitionKey ne '")
    assert fetch(audit_table(history), query, raw_request_hook=hook) == []
    assert sent[0].startswith("PartitionKey ge '2026-11-01' and PartitionKey lt '2026-11-03' "
                              "and IssuedAt ge datetime'2026-11-01T00:00:00")
    # The hostile value stayed one quoted literal (its quotes doubled), so it matched nothing.
    assert sent[0].endswith(" and Container eq 'x'' or PartitionKey ne '''")
    assert len(fetch(audit_table(history), build_query(nov(1, 0), nov(3, 0)))) == 4


def test_bad_audit_arguments_are_one_line(capsys: pytest.CaptureFixture[str],
                                          stack: Stack) -> None:
    code, _, err = run(capsys, "audit", "--since", "2026-11-02", "--until", "2026-11-01")
    assert code == 1 and err.strip() == ("certsas audit: error: --until (2026-11-01T00:00:00Z) "
                                         "is not after --since (2026-11-02T00:00:00Z)")
    code, _, err = run(capsys, "audit", "--since", "last week")
    assert code == 2 and "'last week' is not a time" in err
    code, _, err = run(capsys, "audit", "--container", "Bad_Name")
    assert code == 2
    # Out of the calendar or of what Table storage holds: one line, never a traceback.
    code, _, err = run(capsys, "audit", "--since", "999999d")
    assert (code, err) == (1, "certsas audit: error: that is before 1601-01-01T00:00:00Z, the "
                              "earliest time Table storage holds\n")
    code, _, err = run(capsys, "audit", "--until", "9999-12-31T12:00:00Z")
    assert (code, err) == (1, "certsas audit: error: 9999-12-31T12:00:00Z is outside what "
                              "Table storage holds (1601-01-01T00:00:00Z to "
                              "9999-12-31T00:00:00Z)\n")
    code, _, err = run(capsys, "audit", "--since", "0001-01-01T00:00:00+01:00")
    assert code == 2 and "'0001-01-01T00:00:00+01:00' is outside the calendar" in err


def test_a_missing_audit_table_is_named(capsys: pytest.CaptureFixture[str], stack: Stack,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_TABLE_NAME", "NoSuchAuditTable")
    code, _, err = run(capsys, "audit")
    assert (code, err.strip()) == (
        1, "certsas audit: error: audit table NoSuchAuditTable does not exist")


# --- text from certificates and operators -------------------------------------------------

HOSTILE_CN = "evil\x1b]0:pwned\x07\x1b[2J\u202elanigiro"
HOSTILE_NOTE = "note\x9b31m\r\u2066"


def test_control_characters_are_escaped_in_text_and_exact_in_json(
        capsys: pytest.CaptureFixture[str], stack: Stack, pki: Pki) -> None:
    """SPEC §6: a subject or description cannot repaint the operator's terminal."""
    client = pki.issuing.issue(HOSTILE_CN)
    registration = stack.register(client, description=HOSTILE_NOTE)
    assert stack.token(client).status == 200
    shown_cn = "evil\\x1b]0:pwned\\x07\\x1b[2J\\u202elanigiro"
    for argv in (("show", registration.thumbprint), ("list",), ("audit",)):
        code, out, err = run(capsys, *argv)
        text = "\n".join(out) + err
        assert code == 0, err
        assert all(line.isprintable() for line in out), text
        assert f"CN={shown_cn}" in text, text
    show = run(capsys, "show", registration.thumbprint)[1]
    assert "  description  note\\x9b31m\\x0d\\u2066" in show
    assert run_json(capsys, "list")[0]["description"] == HOSTILE_NOTE
    assert run_json(capsys, "list")[0]["subject"] == registration.subject
    assert run_json(capsys, "audit")[0]["subject"] == registration.subject
    assert registration.subject.startswith(f"CN={HOSTILE_CN},")
