"""``POST /api/rotate`` through the function against Azurite: the write, the audit record,
a racing pair decided by the Table's insert, and revocation of the successor by a CRL."""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableServiceClient
from cryptography import x509

from certsas.devtools.crl_server import CrlServer
from certsas.devtools.pki import Issued
from certsas.grants import AccessGrant
from certsas.registration import Registration
from certsas.registry import TableRegistry
from certsas.runtime import get_rotator
from certsas.thumbprints import sha256_thumbprint
from tests.support.azurite import Azurite, free_port
from tests.support.cli import run
from tests.support.forbidding_proxy import ForbiddingTableProxy
from tests.support.pki import Pki
from tests.support.rotation import rotate_body
from tests.support.served import Served
from tests.support.stack import Stack, app_env, build_stack


def make_stack(monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki,
               tables: tuple[str, str], **extra: str) -> Stack:
    env = app_env(azurite, pki.trust_bundle, tables, **extra)
    return build_stack(monkeypatch, env, azurite.connection_string,
                       containers=("reports", "partner"))


def register_current(stack: Stack, pki: Pki, crl_url: str | None = None
                     ) -> tuple[Registration, Issued]:
    current = pki.issuing.issue("partner-rot", organization="Contoso", crl_url=crl_url)
    registration = Registration.with_grants(
        current.certificate, (AccessGrant.of("partner", prefix="in/", permissions="cw"),
                              AccessGrant.of("reports", permissions="rl")),
        description="partner", allow_rotation=True)
    stack.registry.put(registration)
    return registration, current


def test_a_rotation_registers_the_successor_and_audits_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite: Azurite, pki: Pki,
        fresh_tables: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    stack = make_stack(monkeypatch, azurite, pki, fresh_tables)
    registration, current = register_current(stack, pki)
    successor = pki.issuing.successor(current)
    answer = stack.rotate(current, rotate_body(current, successor))
    assert answer.status == 201, answer.body
    thumbprint = sha256_thumbprint(successor.der)
    assert answer.body == {"thumbprint": thumbprint, "rotated_from": registration.thumbprint,
                           "not_after": answer.body["not_after"]}
    stored = stack.registry.get(thumbprint)
    assert stored is not None
    assert (stored.grants, stored.rotated_from, stored.allow_rotation) == (
        registration.grants, registration.thumbprint, True)
    # The successor gets tokens under the same grants; the current one still does too.
    assert stack.token(successor, {"container": "partner", "blob": "in/x"}).status == 200
    assert stack.token(current, {"container": "reports"}).status == 200
    (record,) = [r for r in stack.audit_records() if r.get("Kind") == "rotation"]
    assert (record["Thumbprint"], record["Successor"]) == (registration.thumbprint, thumbprint)
    # certsas audit shows it among the tokens.
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "audit", "--json")
    listed = json.loads("\n".join(out))
    assert code == 0
    assert [(r["kind"], r["successor"]) for r in listed if r["kind"] == "rotation"] == [
        ("rotation", thumbprint)]
    code, out, _ = run(capsys, "audit")
    (line,) = [line for line in out if f"rotated to {thumbprint[:9]}" in line]
    assert line.split()[1] == registration.thumbprint
    assert out[-1].endswith(", 1 rotation(s)") and out[-1].startswith("2 token(s) issued")
    # Once more: the successor is registered now.
    again = stack.rotate(current, rotate_body(current, successor))
    assert (again.status, again.error, again.body["message"]) == (
        403, "successor_invalid", "The successor certificate is already registered.")


class Racing:
    """The registry, with both rotations held after their "not registered yet" read until
    both have made it: then only the Table's insert can tell them apart."""

    def __init__(self, inner: TableRegistry, successor: str) -> None:
        self.inner = inner
        self.successor = successor
        self.barrier = threading.Barrier(2, timeout=10)

    def get(self, thumbprint: str) -> Registration | None:
        found = self.inner.get(thumbprint)
        if thumbprint == self.successor:
            self.barrier.wait()
        return found

    def add(self, registration: Registration) -> None:
        self.inner.add(registration)


def test_two_rotations_racing_for_one_successor_register_it_once(
        monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki,
        fresh_tables: tuple[str, str]) -> None:
    stack = make_stack(monkeypatch, azurite, pki, fresh_tables)
    _, current = register_current(stack, pki)
    successor = pki.issuing.successor(current)
    rotator = get_rotator()
    # The process-wide rotator, with a registry that holds both calls after their read.
    racing = Racing(stack.registry, sha256_thumbprint(successor.der))
    monkeypatch.setattr("certsas.runtime._rotator", replace(rotator, registrations=racing))
    body = rotate_body(current, successor)
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda i: stack.rotate(current, body, f"race-{i}"),
                                range(2)))
    assert sorted(a.status for a in answers) == [201, 403]
    (loser,) = [a for a in answers if a.status == 403]
    assert (loser.error, loser.body["message"]) == (
        "successor_invalid", "The successor certificate is already registered.")
    rotations = [r for r in stack.audit_records() if r.get("Kind") == "rotation"]
    assert len(rotations) == 1


def test_an_app_that_may_only_read_the_registry_answers_503_and_registers_nothing(
        monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki,
        fresh_tables: tuple[str, str], caplog: pytest.LogCaptureFixture) -> None:
    """With ``allowHolderRotation=false`` the Bicep gives the app Storage Table Data Reader on
    the registry table alone: in Azure the successor's insert is refused with 403
    (docs/deploy.md, "Roles"). It is a dependency failure, never a 500, its reason names the
    parameter, and nothing is registered or audited."""
    stack = make_stack(monkeypatch, azurite, pki, fresh_tables)
    _, current = register_current(stack, pki)
    successor = pki.issuing.successor(current)
    rotator = get_rotator()
    with ForbiddingTableProxy(azurite.table_endpoint, no_inserts_into=(fresh_tables[0],)) as proxy:
        as_reader = TableServiceClient.from_connection_string(through(azurite, proxy)
                                                              ).get_table_client(fresh_tables[0])
        monkeypatch.setattr("certsas.runtime._rotator",
                            replace(rotator, registrations=TableRegistry(as_reader)))
        with caplog.at_level(logging.INFO):
            answer = stack.rotate(current, rotate_body(current, successor))
        assert proxy.refused == 1
    assert (answer.status, answer.error) == (503, "dependency_unavailable")
    assert any("allowHolderRotation" in r.getMessage() for r in caplog.records)
    assert stack.registry.get(sha256_thumbprint(successor.der)) is None
    assert [r for r in stack.audit_records() if r.get("Kind") == "rotation"] == []


def through(azurite: Azurite, proxy: ForbiddingTableProxy) -> str:
    """Azurite's connection string with its Table endpoint replaced by the proxy's."""
    return azurite.connection_string.replace(azurite.table_endpoint, proxy.endpoint)


def test_with_the_append_only_roles_a_rotation_succeeds_and_nothing_can_be_widened(
        monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki,
        fresh_tables: tuple[str, str]) -> None:
    """``allowHolderRotation=true``: on both tables the app holds only the custom role
    (entities read and insert). Every table request the app makes, the token's and the
    rotation's, goes through a proxy that refuses whatever that role does not allow. The
    rotation needs nothing more; and the same identity cannot replace or remove the
    registration it just wrote, nor widen the current one."""
    with ForbiddingTableProxy(azurite.table_endpoint, append_only=fresh_tables) as proxy:
        stack = make_stack(monkeypatch, azurite, pki, fresh_tables,
                           STORAGE_CONNECTION_STRING=through(azurite, proxy))
        registration, current = register_current(stack, pki)
        successor = pki.issuing.successor(current)
        answer = stack.rotate(current, rotate_body(current, successor))
        assert answer.status == 201, answer.body
        assert stack.token(successor, {"container": "partner", "blob": "in/x"}).status == 200
        assert proxy.refused == 0 and proxy.forwarded >= 4
        thumbprint = sha256_thumbprint(successor.der)
        (record,) = [r for r in stack.audit_records() if r.get("Kind") == "rotation"]
        assert record["Successor"] == thumbprint
        # What the role is for: the app's identity can add, never change or take away.
        as_app = TableRegistry(TableServiceClient.from_connection_string(
            through(azurite, proxy)).get_table_client(fresh_tables[0]))
        widened = replace(registration, grants=(AccessGrant.of("partner", permissions="racwdl"),))
        for change in (lambda: as_app.put(widened), lambda: as_app.remove(thumbprint)):
            with pytest.raises(HttpResponseError) as refused:
                change()
            assert refused.value.status_code == 403
        assert proxy.refused == 2
    unchanged = stack.registry.get(registration.thumbprint)
    assert unchanged is not None and unchanged.grants == registration.grants
    assert stack.registry.get(thumbprint) is not None


def test_with_the_append_only_role_a_failed_audit_record_leaves_a_named_successor(
        monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki,
        fresh_tables: tuple[str, str], caplog: pytest.LogCaptureFixture) -> None:
    """The insert cannot be undone by an identity that may not delete: the caller gets 503
    (never a 201 without its record), the successor stays registered, no delete is even
    tried, and an error line names it for the operator (docs/grants-and-rotation.md)."""
    cert_table, audit_table = fresh_tables
    with ForbiddingTableProxy(azurite.table_endpoint, append_only=(cert_table,),
                              no_inserts_into=(audit_table,)) as proxy:
        stack = make_stack(monkeypatch, azurite, pki, fresh_tables,
                           STORAGE_CONNECTION_STRING=through(azurite, proxy))
        registration, current = register_current(stack, pki)
        successor = pki.issuing.successor(current)
        with caplog.at_level(logging.ERROR, logger="certsas.rotation"):
            answer = stack.rotate(current, rotate_body(current, successor))
        assert (answer.status, answer.error) == (503, "dependency_unavailable")
        assert proxy.refused == 1  # the audit insert; no delete was attempted
    thumbprint = sha256_thumbprint(successor.der)
    stored = stack.registry.get(thumbprint)
    assert stored is not None and stored.rotated_from == registration.thumbprint
    assert [r for r in stack.audit_records() if r.get("Kind") == "rotation"] == []
    (line,) = [r.getMessage() for r in caplog.records if r.name == "certsas.rotation"]
    assert f"successor {thumbprint} of {registration.thumbprint}" in line


def test_a_revoked_successor_is_refused_under_require(
        monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki,
        fresh_tables: tuple[str, str]) -> None:
    with CrlServer(free_port()) as crls:
        url = crls.url("/issuing.crl")
        stack = make_stack(monkeypatch, azurite, pki, fresh_tables, REVOCATION_MODE="require",
                           REVOCATION_SOURCES="crl")
        registration, current = register_current(stack, pki, crl_url=url)
        revoked = pki.issuing.successor(current)
        good = pki.issuing.successor(current)
        crls.publish("/issuing.crl", pki.issuing.crl(
            [(revoked.certificate.serial_number, x509.ReasonFlags.key_compromise)]))
        answer = stack.rotate(current, rotate_body(current, revoked))
        assert (answer.status, answer.error, answer.body["message"]) == (
            403, "successor_invalid", "The successor certificate is revoked.")
        assert stack.registry.get(sha256_thumbprint(revoked.der)) is None
        assert stack.rotate(current, rotate_body(current, good)).status == 201
        assert registration.thumbprint != sha256_thumbprint(good.der)


def test_the_dev_pkis_successor_rotates_through_the_tls_front_end(served: Served) -> None:
    """``certsas dev-pki``'s client-next.pem, over real mutual TLS as App Service forwards
    it: the successor the lead's demo and the client library will use."""
    pki = served.files.pki
    served.registry.put(replace(served.register(pki.client), allow_rotation=True))
    url = served.tls_token.removesuffix("token") + "rotate"
    body = rotate_body(pki.client, pki.client_next)
    answer = requests.post(url, data=body, cert=served.files.pair("client"),
                           verify=served.files.ca, timeout=15)
    assert answer.status_code == 201, answer.text
    assert answer.json()["thumbprint"] == sha256_thumbprint(pki.client_next.der)
    token = requests.post(served.tls_token, cert=served.files.pair("client-next"),
                          verify=served.files.ca, timeout=15)
    assert token.status_code == 200, token.text
