"""SAS signing: account-key fields, and the user delegation path behind its seam.

Azurite cannot check user delegation signatures, so that path is shown by its
fields and by how the delegation key is fetched, reused and refreshed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.storage.blob import UserDelegationKey

from certsas.errors import DependencyUnavailable
from certsas.sas import CLOCK_SKEW, AccountKeySigner, UserDelegationSigner
from certsas.scope import Grant
from tests.support.delegation import CountingKeySource, signed_by

NOW = datetime(2026, 11, 23, 10, 0, 0, 123456, tzinfo=UTC)
CONTAINER = Grant("reports", None, "rl", 15)
BLOB = Grant("reports", "dir/a b.txt", "rw", 10)


def fields(token: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(token).items()}


class FakeKeySource:
    """Hands out delegation keys and records each request, as the Blob service would."""

    def __init__(self) -> None:
        self.requests: list[tuple[datetime, datetime]] = []
        self.fail = False

    def get_user_delegation_key(self, key_start_time: datetime,
                                key_expiry_time: datetime) -> UserDelegationKey:
        if self.fail:
            raise ServiceRequestError("unreachable")
        self.requests.append((key_start_time, key_expiry_time))
        key = UserDelegationKey()  # type: ignore[no-untyped-call]
        key.signed_oid = "11111111-1111-1111-1111-111111111111"
        key.signed_tid = "22222222-2222-2222-2222-222222222222"
        key.signed_start = key_start_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        key.signed_expiry = key_expiry_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        key.signed_service = "b"
        key.signed_version = "2025-01-05"
        key.value = "a2V5LXZhbHVlLWZvci10ZXN0cw=="
        return key


def test_account_key_container_sas() -> None:
    signer = AccountKeySigner("acct", "a2V5", "https://acct.blob.core.windows.net")
    signed = signer.sign(CONTAINER, NOW)
    f = fields(signed.token)
    assert (f["sr"], f["sp"], f["spr"]) == ("c", "rl", "https")
    assert f["st"] == "2026-11-23T09:55:00Z" and f["se"] == "2026-11-23T10:15:00Z"
    assert signed.url == f"https://acct.blob.core.windows.net/reports?{signed.token}"
    assert signed.expires_on == datetime(2026, 11, 23, 10, 15, tzinfo=UTC)
    assert "sig" in f and "ss" not in f and "srt" not in f  # never an account SAS


def test_account_key_blob_sas_over_plain_http_endpoint() -> None:
    signer = AccountKeySigner("devstoreaccount1", "a2V5", "http://127.0.0.1:10000/devstoreaccount1")
    signed = signer.sign(BLOB, NOW)
    f = fields(signed.token)
    assert (f["sr"], f["sp"]) == ("b", "rw")
    assert "spr" not in f  # Azurite speaks plain http
    assert urlsplit(signed.url).path == "/devstoreaccount1/reports/dir/a%20b.txt"


@pytest.mark.parametrize(("endpoint", "https_only"), [
    ("http://127.0.0.1:10000/devstoreaccount1", False),
    ("http://127.8.9.10:10000/devstoreaccount1", False),
    ("http://localhost:10000/devstoreaccount1", False),
    ("http://LOCALHOST:10000/devstoreaccount1", False),
    ("http://[::1]:10000/devstoreaccount1", False),
    # A real account reached over http (DefaultEndpointsProtocol=http) still gets
    # HTTPS-only tokens: only a local emulator is spared.
    ("http://acct.blob.core.windows.net", True),
    ("http://10.0.0.4:10000/acct", True),
    ("http://localhost.example.com/acct", True),
    ("https://127.0.0.1:10000/devstoreaccount1", True),
])
def test_only_a_loopback_emulator_drops_https_only(endpoint: str, https_only: bool) -> None:
    f = fields(AccountKeySigner("acct", "a2V5", endpoint).sign(BLOB, NOW).token)
    assert f.get("spr") == ("https" if https_only else None)


def test_user_delegation_sas_fields() -> None:
    source = FakeKeySource()
    signer = UserDelegationSigner("acct", "https://acct.blob.core.windows.net", source,
                                  max_ttl_minutes=60)
    f = fields(signer.sign(BLOB, NOW).token)
    assert f["skoid"] == "11111111-1111-1111-1111-111111111111"
    assert f["sktid"] == "22222222-2222-2222-2222-222222222222"
    assert (f["sks"], f["skv"], f["sr"], f["sp"], f["spr"]) == ("b", "2025-01-05", "b", "rw", "https")
    assert f["se"] == "2026-11-23T10:10:00Z"
    assert f["ske"] >= f["se"]


def test_delegation_key_is_reused_then_refreshed_before_it_could_cut_a_token_short() -> None:
    source = FakeKeySource()
    signer = UserDelegationSigner("acct", "https://acct.blob.core.windows.net", source,
                                  max_ttl_minutes=60, key_lifetime=timedelta(hours=6))
    for minute in range(0, 240, 7):
        signer.sign(CONTAINER, NOW + timedelta(minutes=minute))
    assert len(source.requests) == 1
    start, expiry = source.requests[0]
    assert start == NOW.replace(microsecond=0) - CLOCK_SKEW
    # Within max TTL + margin of the key's end, a new key is fetched.
    late = expiry - timedelta(minutes=60)
    signed = signer.sign(Grant("reports", None, "r", 60), late)
    assert len(source.requests) == 2
    assert signed.expires_on <= source.requests[1][1]


def test_every_token_expires_before_its_key() -> None:
    source = FakeKeySource()
    signer = UserDelegationSigner("acct", "https://acct.blob.core.windows.net", source,
                                  max_ttl_minutes=60, key_lifetime=timedelta(hours=3))
    for minute in range(0, 600, 13):
        now = NOW + timedelta(minutes=minute)
        f = fields(signer.sign(Grant("reports", None, "r", 60), now).token)
        assert f["se"] <= f["ske"]


def test_key_fetch_failure_is_dependency_unavailable_and_retried() -> None:
    source = FakeKeySource()
    source.fail = True
    signer = UserDelegationSigner("acct", "https://acct.blob.core.windows.net", source,
                                  max_ttl_minutes=60)
    with pytest.raises(DependencyUnavailable):
        signer.sign(CONTAINER, NOW)
    source.fail = False
    assert signer.sign(CONTAINER, NOW).token
    assert len(source.requests) == 1


def test_signature_digest_is_of_sig_only() -> None:
    import hashlib

    signed = AccountKeySigner("acct", "a2V5", "https://x").sign(CONTAINER, NOW)
    assert signed.signature_sha256 == hashlib.sha256(fields(signed.token)["sig"].encode()).hexdigest()


def test_at_the_longest_allowed_lifetime_one_key_still_serves_many_tokens() -> None:
    source = FakeKeySource()
    signer = UserDelegationSigner("acct", "https://acct.blob.core.windows.net", source,
                                  max_ttl_minutes=1440)
    for hour in range(0, 72):
        now = NOW + timedelta(hours=hour)
        f = fields(signer.sign(Grant("reports", None, "r", 1440), now).token)
        assert f["se"] <= f["ske"]
    # Keys of about two days, refreshed once less than a day and ten minutes remain.
    assert 2 <= len(source.requests) <= 4
    for start, expiry in source.requests:
        assert expiry - start <= timedelta(days=7)


class Epochs:
    """The generation an EpochWatch would report; the test raises it."""

    def __init__(self) -> None:
        self.generation = 1

    def __call__(self) -> int:
        return self.generation


def test_an_epoch_change_drops_the_key_and_the_next_token_is_signed_with_a_new_one() -> None:
    source, epochs = CountingKeySource("unit"), Epochs()
    signer = UserDelegationSigner("acct", "https://acct.blob.core.windows.net", source,
                                  max_ttl_minutes=60, epoch=epochs)
    request_id = "6f1c1b7e-3c55-4a53-9d0e-0c0f1a1b2c3d"
    for minute in range(10):  # the epoch as it was: one key, whatever the traffic
        signer.sign(BLOB, NOW + timedelta(minutes=minute), request_id=request_id)
    assert source.fetches == 1
    epochs.generation = 2  # revoke-tokens ran and this instance has read the new epoch
    signed = signer.sign(BLOB, NOW + timedelta(minutes=11), request_id=request_id)
    assert source.fetches == 2
    old_key, new_key = source.keys
    assert signed_by(signed.url, new_key)
    assert not signed_by(signed.url, old_key)
    f = fields(signed.token)
    assert f["scid"] == request_id  # SPEC §1: the correlation field is the request id
    assert (f["skt"], f["ske"]) == (new_key.signed_start, new_key.signed_expiry)
    signer.sign(BLOB, NOW + timedelta(minutes=12))
    assert source.fetches == 2  # and that key is kept until the epoch changes again


def test_a_revoked_key_is_not_used_even_when_its_successor_cannot_be_fetched() -> None:
    source, epochs = FakeKeySource(), Epochs()
    signer = UserDelegationSigner("acct", "https://acct.blob.core.windows.net", source,
                                  max_ttl_minutes=60, epoch=epochs)
    signer.sign(CONTAINER, NOW)
    epochs.generation = 2
    source.fail = True
    for _ in range(2):  # no falling back to the old key on the second request either
        with pytest.raises(DependencyUnavailable):
            signer.sign(CONTAINER, NOW)
    source.fail = False
    signer.sign(CONTAINER, NOW)
    assert len(source.requests) == 2


def test_a_token_signed_before_the_change_still_verifies_against_the_old_key_only() -> None:
    source, epochs = CountingKeySource("unit"), Epochs()
    signer = UserDelegationSigner("acct", "https://acct.blob.core.windows.net", source,
                                  max_ttl_minutes=60, epoch=epochs)
    before = signer.sign(CONTAINER, NOW, request_id="a")
    epochs.generation = 2
    signer.sign(CONTAINER, NOW, request_id="b")
    assert signed_by(before.url, source.keys[0]) and not signed_by(before.url, source.keys[1])
    assert "scid" not in fields(AccountKeySigner("acct", "a2V5", "https://x").sign(
        CONTAINER, NOW, request_id="a").token)  # a service SAS has no correlation field
