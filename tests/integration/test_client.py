"""certsas.client against the served app (the emulated App Service front end, real TLS) and
Azurite: Storage clients that stay authorised, a refusal, Storage's own refusals, threads.

Time: the app's broker and the client share one ManualClock, so a test moves through several
token lifetimes in a second. Azurite checks a SAS against the real clock, which the manual
one starts at and stays within five minutes of (tokens start five minutes back, SPEC's
CLOCK_SKEW), so every token the app signs is valid in Azurite; that tokens really expire and
the client really replaces them in real time is shown by test_client_venv.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError
from azure.data.tables import TableServiceClient

from certsas import runtime
from certsas.client import BodyNotReplayable, CertSas, Refused, StorageAuthenticationFailed
from certsas.client.policy import FreshSasRetry
from certsas.config import Settings
from tests.support.azurite import Azurite
from tests.support.blob_proxy import AuthFailingBlobProxy
from tests.support.client_scenario import expected_fetches, run
from tests.support.clock import ManualClock
from tests.support.loghygiene import find_leaks
from tests.support.served import Served

LIFETIME = 60.0  # ttl_minutes=1


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


def use_broker(monkeypatch: pytest.MonkeyPatch, clock: ManualClock, **env: str) -> None:
    """The served app's broker on ``clock`` (runtime.build_broker's seam), settings + ``env``."""
    settings = Settings.from_env({**os.environ, **env})
    monkeypatch.setattr(runtime, "_broker", runtime.build_broker(settings, clock=clock))


@pytest.fixture
def sas(served: Served, monkeypatch: pytest.MonkeyPatch, clock: ManualClock) -> Iterator[CertSas]:
    served.register(served.files.pki.client)
    use_broker(monkeypatch, clock)
    cert, key = served.files.pair("client")
    with CertSas(served.tls_token, cert=cert, key=key, ca=served.files.ca, clock=clock) as client:
        yield client


def issued(served: Served) -> int:
    """Tokens the app issued: its audit records (SPEC §5), one per token, written first."""
    tables = TableServiceClient.from_connection_string(served.env["STORAGE_CONNECTION_STRING"])
    audit = tables.get_table_client(served.env["AUDIT_TABLE_NAME"])
    return sum(1 for _ in audit.list_entities(select=["RowKey"]))


# --- across token lifetimes ----------------------------------------------------------------


def test_a_container_client_works_across_token_lifetimes_with_the_fetches_the_rule_implies(
        sas: CertSas, served: Served, clock: ManualClock) -> None:
    steps, step_seconds = 18, 10.0  # 170 s: almost three lifetimes of a one-minute token
    written = run(sas, steps, step_seconds, clock.advance)
    assert len(written) == steps
    # Fetched at 0, 50, 100 and 150 s: each time less than 12 s (a fifth) was left.
    assert expected_fetches(steps, step_seconds, LIFETIME) == 4
    assert issued(served) == 4


def test_token_is_reused_until_a_fifth_of_its_lifetime_is_left(
        sas: CertSas, served: Served, clock: ManualClock) -> None:
    first = sas.token(ttl_minutes=1)
    clock.advance(48)  # exactly a fifth left: not less
    assert sas.token(ttl_minutes=1) is first
    clock.advance(1)
    second = sas.token(ttl_minutes=1)
    assert second.signature != first.signature and issued(served) == 2
    assert (second.expires_on - clock()).total_seconds() == LIFETIME


def test_blob_client_is_scoped_to_its_blob(sas: CertSas, served: Served) -> None:
    blob = sas.blob_client("in/report.csv", permissions="cw")
    blob.upload_blob(b"a,b\n1,2\n")
    token = sas.token(blob="in/report.csv", permissions="cw")
    assert (token.resource, token.blob, token.permissions) == ("blob", "in/report.csv", "cw")
    assert issued(served) == 1  # the client's token, reused by token() for the same scope
    other = sas.container_client(permissions="r")
    assert other.download_blob("in/report.csv").readall() == b"a,b\n1,2\n"


def test_storage_keywords_are_passed_on_and_the_two_it_owns_refused(sas: CertSas) -> None:
    container = sas.container_client(retry_total=1, max_single_put_size=1024)
    assert container._config.max_single_put_size == 1024
    retry = [p for p in container._pipeline._impl_policies if isinstance(p, FreshSasRetry)]
    assert len(retry) == 1 and retry[0].total_retries == 1
    with pytest.raises(TypeError, match="sets retry_policy itself"):
        sas.container_client(retry_policy=None)


# --- refusals -------------------------------------------------------------------------------


def test_a_refusal_by_certsas_raises_refused(served: Served) -> None:
    cert, key = served.files.pair("client")
    with CertSas(served.tls_token, cert=cert, key=key, ca=served.files.ca) as sas:
        with pytest.raises(Refused) as refused:
            sas.container_client()
        assert (refused.value.status, refused.value.error) == (403, "certificate_not_registered")
        served.register(served.files.pki.client, permissions="r")
        with pytest.raises(Refused) as refused:
            sas.token(permissions="w")
        assert refused.value.error == "scope_not_allowed"
        assert str(refused.value).startswith("403 scope_not_allowed: ")


def test_a_registration_disabled_mid_job_is_refused_at_the_next_renewal(
        sas: CertSas, served: Served, clock: ManualClock) -> None:
    container = sas.container_client(ttl_minutes=1)
    container.upload_blob("before.txt", b"x")
    served.registry.set_enabled(served.register(served.files.pki.client).thumbprint, False)
    container.upload_blob("still-valid.txt", b"x")  # the token in hand still works
    clock.advance(50)
    with pytest.raises(Refused) as refused:
        container.upload_blob("after.txt", b"x")
    assert refused.value.error == "certificate_not_registered"


# --- Storage refusing the SAS: 403 AuthenticationFailed ---------------------------------------


@pytest.fixture
def proxied(served: Served, azurite: Azurite, monkeypatch: pytest.MonkeyPatch,
            clock: ManualClock) -> Iterator[tuple[CertSas, list[float]]]:
    """A CertSas whose tokens name a proxy in front of Azurite's Blob service; the pauses it
    takes are recorded (and move the clock), not slept."""
    served.register(served.files.pki.client)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    cert, key = served.files.pair("client")
    with CertSas(served.tls_token, cert=cert, key=key, ca=served.files.ca, clock=clock,
                 sleep=sleep) as sas:
        yield sas, slept


def proxy_for(azurite: Azurite, monkeypatch: pytest.MonkeyPatch, clock: ManualClock,
              refuse_first: int, **options: Any) -> AuthFailingBlobProxy:
    proxy = AuthFailingBlobProxy(azurite.blob_endpoint, refuse_first, **options)
    use_broker(monkeypatch, clock, STORAGE_CONNECTION_STRING=azurite.connection_string.replace(
        f"BlobEndpoint={azurite.blob_endpoint}", f"BlobEndpoint={proxy.endpoint}"))
    return proxy


@pytest.mark.parametrize("refused", [1, 3, 5])
def test_storage_refusing_the_sas_is_retried_with_new_tokens(
        proxied: tuple[CertSas, list[float]], served: Served, azurite: Azurite,
        monkeypatch: pytest.MonkeyPatch, clock: ManualClock, refused: int) -> None:
    sas, slept = proxied
    with proxy_for(azurite, monkeypatch, clock, refused) as proxy:
        container = sas.container_client()
        container.upload_blob("revoked.txt", b"after revoke-tokens", overwrite=True)
    assert proxy.refused == refused and proxy.forwarded == 1
    assert len(set(proxy.signatures)) == refused + 1  # a new token for every attempt
    assert issued(served) == refused + 1
    assert slept == [2.0, 4.0, 8.0, 16.0, 30.0][:refused]
    assert sum(slept) <= 60


def test_storage_refusing_past_the_budget_gives_up_clearly(
        proxied: tuple[CertSas, list[float]], served: Served, azurite: Azurite,
        monkeypatch: pytest.MonkeyPatch, clock: ManualClock) -> None:
    sas, slept = proxied
    with proxy_for(azurite, monkeypatch, clock, 100) as proxy:
        container = sas.container_client()
        with pytest.raises(StorageAuthenticationFailed) as failed:
            container.upload_blob("never.txt", b"x")
    assert proxy.refused == 6 and proxy.forwarded == 0 and issued(served) == 6
    assert sum(slept) == 60
    assert isinstance(failed.value, ClientAuthenticationError | HttpResponseError)
    assert failed.value.status_code == 403 and failed.value.error_code == "AuthenticationFailed"
    assert str(failed.value).startswith(
        "Storage refused the SAS as not authenticated (403 AuthenticationFailed) 6 times over "
        "60s, with a new token each time; giving up.")


def test_a_body_that_cannot_be_sent_again_is_not_retried(
        proxied: tuple[CertSas, list[float]], served: Served, azurite: Azurite,
        monkeypatch: pytest.MonkeyPatch, clock: ManualClock) -> None:
    sas, slept = proxied
    with proxy_for(azurite, monkeypatch, clock, 1) as proxy:
        blob = sas.container_client().get_blob_client("append.log")
        with pytest.raises(BodyNotReplayable) as failed:
            blob.stage_block("YmxvY2sx", OneWay(b"0123456789"), length=10)  # type: ignore[arg-type]
    assert proxy.refused == 1 and proxy.forwarded == 0 and slept == []
    assert "its body (OneWay) is a one-way stream that has been read" in str(failed.value)
    # The same request with a seekable body is retried (another scope: a token naming this proxy).
    with proxy_for(azurite, monkeypatch, clock, 1) as proxy:
        blob = sas.container_client(ttl_minutes=5).get_blob_client("append.log")
        blob.stage_block("YmxvY2sx", io.BytesIO(b"0123456789"), length=10)
    assert proxy.refused == 1 and proxy.forwarded == 1


@pytest.mark.parametrize("code", ["AuthorizationPermissionMismatch", "AuthorizationFailure"])
def test_other_refusals_are_not_retried_since_a_new_token_cannot_fix_them(
        proxied: tuple[CertSas, list[float]], served: Served, azurite: Azurite,
        monkeypatch: pytest.MonkeyPatch, clock: ManualClock, code: str) -> None:
    sas, slept = proxied
    with proxy_for(azurite, monkeypatch, clock, 1, error_code=code) as proxy, \
            pytest.raises(HttpResponseError) as failed:
        sas.container_client().upload_blob("denied.txt", b"x")
    assert proxy.refused == 1 and proxy.forwarded == 0 and slept == [] and issued(served) == 1
    assert getattr(failed.value, "error_code", None) == code
    assert not isinstance(failed.value, StorageAuthenticationFailed)


# Storage's own retry (a 503 here) with backoffs of 0 s, so the test waits for nothing.
NO_BACKOFF: dict[str, Any] = {"initial_backoff": 0, "increment_base": 0, "random_jitter_range": 0}


def test_storage_own_retry_replaces_a_token_gone_stale_since_the_first_attempt(
        proxied: tuple[CertSas, list[float]], served: Served, azurite: Azurite,
        monkeypatch: pytest.MonkeyPatch, clock: ManualClock) -> None:
    sas, _ = proxied
    with proxy_for(azurite, monkeypatch, clock, 1, status=503, error_code="ServerBusy",
                   on_refusal=lambda: clock.advance(50)) as proxy:
        container = sas.container_client(ttl_minutes=1, **NO_BACKOFF)
        container.upload_blob("busy.txt", b"x", overwrite=True)
    assert proxy.refused == 1 and proxy.forwarded == 1
    # The retry came 50 s into a one-minute token (less than a fifth left): with a new one.
    assert len(set(proxy.signatures)) == 2 and issued(served) == 2
    assert proxy.sig_counts == [1, 1]


def test_storage_own_retry_after_another_thread_renewed_sends_one_sas(
        proxied: tuple[CertSas, list[float]], served: Served, azurite: Azurite,
        monkeypatch: pytest.MonkeyPatch, clock: ManualClock) -> None:
    sas, _ = proxied

    def renewed_meanwhile() -> None:  # runs on the proxy's thread: another user of `sas`
        clock.advance(50)
        sas.token(ttl_minutes=1)

    with proxy_for(azurite, monkeypatch, clock, 1, status=503, error_code="ServerBusy",
                   on_refusal=renewed_meanwhile) as proxy:
        container = sas.container_client(ttl_minutes=1, **NO_BACKOFF)
        container.upload_blob("busy.txt", b"x", overwrite=True)
    assert proxy.refused == 1 and proxy.forwarded == 1 and issued(served) == 2
    # The shared credential's new SAS replaced the old one in the retried URL, not added to it.
    assert proxy.sig_counts == [1, 1] and len(set(proxy.signatures)) == 2


class OneWay:
    """A stream that can only be read forward, as a socket or a pipe is."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)


# --- threads --------------------------------------------------------------------------------


def test_thirty_two_threads_make_one_fetch_per_scope_and_lifetime(
        sas: CertSas, served: Served, clock: ManualClock) -> None:
    scopes = ({"ttl_minutes": 1}, {"blob": "shared/one.txt", "ttl_minutes": 1})
    container = sas.container_client(ttl_minutes=1)  # the first scope's first fetch

    def round_of(number: int) -> list[set[str]]:
        barrier, seen = threading.Barrier(32), [set[str](), set[str]()]
        errors: list[BaseException] = []

        def work(index: int) -> None:
            try:
                barrier.wait()
                for slot, scope in enumerate(scopes):
                    seen[slot].add(sas.token(**scope).signature)  # type: ignore[arg-type]
                container.upload_blob(f"threads/{number}/{index}.txt", b"x")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        return seen

    first = round_of(1)
    assert [len(s) for s in first] == [1, 1] and issued(served) == 2
    clock.advance(50)  # every token now has less than a fifth of its lifetime left
    second = round_of(2)
    assert issued(served) == 4
    # Threads that came while the one fetch ran used the still-valid token.
    assert all(len(now - before) == 1 for now, before in zip(second, first, strict=True))
    assert len(list(container.list_blobs(name_starts_with="threads/"))) == 64


# --- secrets --------------------------------------------------------------------------------


def test_no_token_in_logs_reprs_or_errors_even_at_debug(
        proxied: tuple[CertSas, list[float]], served: Served, azurite: Azurite,
        monkeypatch: pytest.MonkeyPatch, clock: ManualClock) -> None:
    sas, _ = proxied
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler, root = Keep(logging.DEBUG), logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with proxy_for(azurite, monkeypatch, clock, 2):
            container = sas.container_client(logging_enable=True)
            container.upload_blob("debug.txt", b"x", overwrite=True)
            token = sas.token()
            texts = [repr(sas), repr(token), str(token), repr(container.credential)]
        with proxy_for(azurite, monkeypatch, clock, 100):
            refused = sas.container_client(ttl_minutes=5, logging_enable=True)
            with pytest.raises(StorageAuthenticationFailed) as failed:
                refused.upload_blob("debug.txt", b"x", overwrite=True)
            texts += [str(failed.value), repr(failed.value)]
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    assert any("sig=REDACTED" in line for line in lines)  # urllib3's request lines, redacted
    assert any("certsas.client: new token for" in line for line in lines)
    assert find_leaks(lines + texts) == []
    assert not any(token.signature in text for text in lines + texts)


def test_a_network_failure_to_storage_does_not_quote_the_sas(
        proxied: tuple[CertSas, list[float]], served: Served, azurite: Azurite,
        monkeypatch: pytest.MonkeyPatch, clock: ManualClock) -> None:
    """urllib3 and requests put the URL, query included, in some of their messages; what
    azure-core raises from them (and its chained causes) reaches the caller's traceback."""
    sas, _ = proxied
    with proxy_for(azurite, monkeypatch, clock, 0):
        container = sas.container_client(retry_total=0)
        token = sas.token()
    with pytest.raises(AzureError) as failed:  # the proxy has stopped: nobody on its port
        container.upload_blob("gone.txt", b"x")
    text = "".join(traceback.format_exception(failed.value))
    assert "Connection refused" in text
    assert token.signature not in text and quote(token.signature, safe="") not in text
    assert find_leaks([text]) == []
