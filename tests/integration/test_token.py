"""POST /api/token end to end: the function, a real Azurite, tokens used for real."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobClient, ContainerClient
from cryptography.hazmat.primitives import hashes

from certsas.devtools.pki import SERVER_AUTH
from tests.support.azurite import Azurite, free_port
from tests.support.pki import Pki
from tests.support.stack import Stack, app_env, build_stack, forwarded


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki,
          fresh_tables: tuple[str, str]) -> Stack:
    env = app_env(azurite, pki.trust_bundle, fresh_tables)
    return build_stack(monkeypatch, env, azurite.connection_string)


def refused(code: int, error: str, stack: Stack, *args: object, **kwargs: object) -> None:
    answer = stack.call(*args, **kwargs)  # type: ignore[arg-type]
    assert (answer.status, answer.error) == (code, error), answer.body
    assert "token" not in answer.body


# --- success ---------------------------------------------------------------------


def test_container_token_reads_lists_and_writes_within_its_scope(stack: Stack, pki: Pki) -> None:
    stack.register(pki.client, permissions="rwl")
    answer = stack.token(pki.client)
    assert answer.status == 200, answer.body
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Content-Type"].startswith("application/json")
    body = answer.body
    assert (body["resource"], body["container"], body["blob"], body["permissions"]) == (
        "container", "reports", None, "rwl")
    assert body["url"] == f"{stack.blobs.url.rstrip('/')}/reports?{body['token']}"
    expires = datetime.strptime(body["expires_on"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert timedelta(minutes=14) < expires - datetime.now(UTC) <= timedelta(minutes=15)

    container = ContainerClient.from_container_url(body["url"])
    container.upload_blob("hello.txt", b"hello", overwrite=True)
    assert container.download_blob("hello.txt").readall() == b"hello"
    assert "hello.txt" in [b.name for b in container.list_blobs()]


def test_blob_token_works_for_its_blob_only(stack: Stack, pki: Pki) -> None:
    stack.register(pki.client, permissions="rcwl")
    answer = stack.token(pki.client, {"blob": "in/a.txt"})
    assert answer.status == 200, answer.body
    # "l" does not apply to a blob and is dropped from the default.
    assert (answer.body["resource"], answer.body["permissions"]) == ("blob", "rcw")
    blob = BlobClient.from_blob_url(answer.body["url"])
    blob.upload_blob(b"payload", overwrite=True)
    assert blob.download_blob().readall() == b"payload"

    token = answer.body["token"]
    other = BlobClient.from_blob_url(f"{stack.blobs.url.rstrip('/')}/reports/in/b.txt?{token}")
    assert _status(lambda: other.upload_blob(b"x", overwrite=True)) == 403


def test_token_gets_403_outside_its_scope(stack: Stack, pki: Pki) -> None:
    stack.register(pki.client, permissions="rl")
    body = stack.token(pki.client).body
    token = body["token"]
    base = stack.blobs.url.rstrip("/")
    stack.blobs.get_container_client("reports").upload_blob("seed.txt", b"seed", overwrite=True)
    stack.blobs.get_container_client("other").upload_blob("seed.txt", b"seed", overwrite=True)

    reports = ContainerClient.from_container_url(body["url"])
    assert reports.download_blob("seed.txt").readall() == b"seed"
    # Missing permission: the token reads and lists but may not write or delete.
    assert _status(lambda: reports.upload_blob("new.txt", b"x")) == 403
    assert _status(lambda: reports.delete_blob("seed.txt")) == 403
    # Another container.
    other = ContainerClient.from_container_url(f"{base}/other?{token}")
    assert _status(lambda: other.download_blob("seed.txt").readall()) == 403
    assert _status(lambda: list(other.list_blobs())) == 403


def test_expired_token_gets_403(monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki,
                                fresh_tables: tuple[str, str]) -> None:
    stack = build_stack(monkeypatch, app_env(azurite, pki.trust_bundle, fresh_tables),
                        azurite.connection_string)
    stack.register(pki.client, permissions="rl")
    from certsas import runtime
    from certsas.config import Settings

    # A broker whose clock is 30 minutes behind: its 15-minute token is already over.
    past = datetime.now(UTC) - timedelta(minutes=30)
    broker = runtime.build_broker(Settings.from_env(stack.env), clock=lambda: past)
    monkeypatch.setattr(runtime, "_broker", broker)
    answer = stack.token(pki.client)
    assert answer.status == 200, answer.body
    container = ContainerClient.from_container_url(answer.body["url"])
    assert _status(lambda: list(container.list_blobs())) == 403


def test_every_issued_token_is_audited_without_the_token(stack: Stack, pki: Pki) -> None:
    stack.register(pki.client, permissions="r")
    spoofed_then_real = "198.51.100.1, 203.0.113.9:51234"
    first = stack.call({**forwarded(pki.client), "X-Forwarded-For": spoofed_then_real}).body
    second = stack.token(pki.client, {"blob": "x.bin"}).body
    records = stack.audit_records()
    assert len(records) == 2
    digests = {hashlib.sha256(parse_qs(b["token"])["sig"][0].encode()).hexdigest()
               for b in (first, second)}
    assert {r["SignatureSha256"] for r in records} == digests
    blobs = {r["Blob"] for r in records}
    assert blobs == {"", "x.bin"}
    record = next(r for r in records if r["Blob"] == "")
    assert record["ClientAddress"] == "203.0.113.9:51234"
    assert record["Thumbprint"] == pki.client.certificate.fingerprint(hashes.SHA256()).hex().upper()
    assert record["RequestId"] == "test-invocation"
    for r in records:
        assert not any(first["token"] in str(v) or second["token"] in str(v) for v in r.values())


# --- every refusal of SPEC §1 ---------------------------------------------------------


def test_missing_or_empty_header_is_401(stack: Stack) -> None:
    refused(401, "client_certificate_missing", stack, {})
    refused(401, "client_certificate_missing", stack, {"X-ARR-ClientCert": "   "})


def test_header_name_is_case_insensitive(stack: Stack, pki: Pki) -> None:
    stack.register(pki.client)
    value = forwarded(pki.client)["X-ARR-ClientCert"]
    assert stack.call({"x-arr-clientcert": value}).status == 200


def test_only_the_configured_header_is_read(monkeypatch: pytest.MonkeyPatch, azurite: Azurite,
                                            pki: Pki, fresh_tables: tuple[str, str]) -> None:
    env = app_env(azurite, pki.trust_bundle, fresh_tables, CLIENT_CERT_HEADER="X-ARR-ClientCert-AGW")
    stack = build_stack(monkeypatch, env, azurite.connection_string)
    stack.register(pki.client)
    refused(401, "client_certificate_missing", stack, forwarded(pki.client))
    value = forwarded(pki.client)["X-ARR-ClientCert"]
    assert stack.call({"X-ARR-ClientCert-AGW": value}).status == 200


def test_malformed_header_is_400(stack: Stack, pki: Pki) -> None:
    refused(400, "client_certificate_malformed", stack, {"X-ARR-ClientCert": "not a cert"})
    two = base64.b64encode(pki.client.der * 2).decode()
    refused(400, "client_certificate_malformed", stack, {"X-ARR-ClientCert": two})


def test_untrusted_chain_is_403(stack: Stack, pki: Pki) -> None:
    stranger = pki.stranger.issue("client-one")
    stack.register(stranger)  # registration cannot make an untrusted CA trusted
    refused(403, "certificate_not_trusted", stack, forwarded(stranger))


def test_missing_client_auth_eku_is_not_trusted(stack: Stack, pki: Pki) -> None:
    for issued in (pki.issuing.issue("no-eku", eku=None),
                   pki.issuing.issue("server", eku=(SERVER_AUTH,))):
        stack.register(issued)
        refused(403, "certificate_not_trusted", stack, forwarded(issued))


def test_leaf_without_san_is_accepted(stack: Stack, pki: Pki) -> None:
    assert not [e for e in pki.client.certificate.extensions
                if e.oid.dotted_string == "2.5.29.17"]
    stack.register(pki.client)
    assert stack.token(pki.client).status == 200


def test_expired_and_not_yet_valid_are_403(stack: Stack, pki: Pki) -> None:
    now = datetime.now(UTC)
    expired = pki.issuing.issue("old", not_before=now - timedelta(days=10),
                                not_after=now - timedelta(days=1))
    future = pki.issuing.issue("new", not_before=now + timedelta(days=1),
                               not_after=now + timedelta(days=10))
    for issued in (expired, future):
        stack.register(issued)
        refused(403, "certificate_expired", stack, forwarded(issued))


def test_dates_are_checked_before_the_chain(stack: Stack, pki: Pki) -> None:
    now = datetime.now(UTC)
    stranger_expired = pki.stranger.issue("x", not_before=now - timedelta(days=3),
                                          not_after=now - timedelta(days=1))
    refused(403, "certificate_expired", stack, forwarded(stranger_expired))


def test_unregistered_and_disabled_are_403(stack: Stack, pki: Pki) -> None:
    refused(403, "certificate_not_registered", stack, forwarded(pki.client))
    stack.register(pki.client)
    assert stack.token(pki.client).status == 200
    stack.registry.set_enabled(next(stack.registry.scan()).thumbprint, False)
    refused(403, "certificate_not_registered", stack, forwarded(pki.client))


def test_same_subject_from_another_trusted_issuer_does_not_match(
        monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki,
        fresh_tables: tuple[str, str]) -> None:
    second = pki.root.intermediate("second issuing CA")
    env = app_env(azurite, pki.trust_bundle, fresh_tables)
    env["TRUSTED_CA_CERTS"] += second.issued.pem.decode()
    stack = build_stack(monkeypatch, env, azurite.connection_string)
    stack.register(pki.client)
    twin = second.issue("client-one")  # same subject, trusted, but not the registered one
    assert twin.certificate.subject == pki.client.certificate.subject
    refused(403, "certificate_not_registered", stack, forwarded(twin))
    assert stack.token(pki.client).status == 200


def test_scope_beyond_registration_is_403(stack: Stack, pki: Pki) -> None:
    stack.register(pki.client, permissions="rl", max_ttl_minutes=30)
    headers = forwarded(pki.client)
    refused(403, "scope_not_allowed", stack, headers, {"container": "other"})
    refused(403, "scope_not_allowed", stack, headers, {"permissions": "rw"})
    refused(403, "scope_not_allowed", stack, headers, {"ttl_minutes": 31})
    assert stack.call(headers, {"ttl_minutes": 30}).status == 200


def test_prefix_allows_only_blobs_under_it(stack: Stack, pki: Pki) -> None:
    stack.register(pki.client, permissions="rw", prefix="tenant-a/")
    headers = forwarded(pki.client)
    refused(403, "scope_not_allowed", stack, headers)
    refused(403, "scope_not_allowed", stack, headers, {"blob": "tenant-b/x"})
    answer = stack.call(headers, {"blob": "tenant-a/x"})
    assert (answer.status, answer.body["resource"]) == (200, "blob")


def test_invalid_body_is_400(stack: Stack, pki: Pki) -> None:
    stack.register(pki.client)
    headers = forwarded(pki.client)
    for body in (b"[1]", b"{", b'"x"', b'{"ttl_minutes": 0}', b'{"ttl_minutes": "5"}',
                 b'{"ttl_minutes": 1.5}', b'{"ttl_minutes": true}', b'{"extra": 1}',
                 b'{"permissions": "rx"}', b'{"blob": ""}', b'{"blob": "a/../b"}'):
        refused(400, "invalid_request", stack, headers, body)


def test_storage_unreachable_is_503(monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki,
                                    fresh_tables: tuple[str, str]) -> None:
    stack = build_stack(monkeypatch, app_env(azurite, pki.trust_bundle, fresh_tables),
                        azurite.connection_string)
    dead = azurite.connection_string.replace(str(azurite.table_port), str(free_port()))
    monkeypatch.setenv("STORAGE_CONNECTION_STRING", dead)
    from certsas.runtime import reset_broker

    reset_broker()
    refused(503, "dependency_unavailable", stack, forwarded(pki.client))


def test_missing_registry_table_is_503(monkeypatch: pytest.MonkeyPatch, azurite: Azurite,
                                       pki: Pki, fresh_tables: tuple[str, str]) -> None:
    stack = build_stack(monkeypatch, app_env(azurite, pki.trust_bundle, fresh_tables),
                        azurite.connection_string)
    stack.tables.delete_table(fresh_tables[0])
    refused(503, "dependency_unavailable", stack, forwarded(pki.client))


def test_audit_failure_means_no_token(stack: Stack, pki: Pki) -> None:
    stack.register(pki.client)
    stack.tables.delete_table(stack.env["AUDIT_TABLE_NAME"])
    refused(503, "dependency_unavailable", stack, forwarded(pki.client))


def _status(action: object) -> int:
    try:
        action()  # type: ignore[operator]
    except HttpResponseError as exc:
        return int(exc.status_code or 0)
    return 200
