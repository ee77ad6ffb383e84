"""certsas.client.scopes and redact: when a token is replaced, and what a log line keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from azure.core.credentials import AzureSasCredential

from certsas.client import Refused, Token, Unreachable
from certsas.client.redact import redact
from certsas.client.scopes import ScopeTokens
from certsas.client.tokens import Scope, signature_of
from tests.support.clock import ManualClock


class Certsas:
    """Stands in for the endpoint: numbered tokens of ``ttl`` seconds, or an outage."""

    def __init__(self, clock: ManualClock, ttl: int = 600) -> None:
        self.clock, self.ttl, self.fetches = clock, ttl, 0
        self.failure: Exception | None = None

    def __call__(self, scope: Scope) -> Token:
        if self.failure is not None:
            raise self.failure
        self.fetches += 1
        expires = self.clock() + timedelta(seconds=self.ttl)
        return Token(token=f"sv=1&se=x&sig=s{self.fetches}", url=f"https://a/c?sig=s{self.fetches}",
                     expires_on=expires, permissions="r", resource="container", container="c",
                     blob=None)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))


def test_replaced_once_less_than_a_fifth_is_left(clock: ManualClock) -> None:
    certsas = Certsas(clock)
    tokens = ScopeTokens(Scope(), certsas, clock)
    first = tokens.current()
    assert tokens.credential().signature == first.token
    clock.advance(480)  # exactly a fifth left
    assert tokens.current() is first
    clock.advance(1)
    second = tokens.current()
    assert certsas.fetches == 2 and tokens.credential().signature == second.token


def test_an_outage_keeps_the_valid_token_and_asks_again_later(clock: ManualClock) -> None:
    certsas = Certsas(clock)
    tokens = ScopeTokens(Scope(), certsas, clock)
    first = tokens.current()
    clock.advance(500)
    certsas.failure = Unreachable("cannot connect to app: connection refused")
    assert tokens.current() is first
    certsas.failure = None
    clock.advance(4)
    assert tokens.current() is first and certsas.fetches == 1  # not before 5 s
    clock.advance(1)
    assert tokens.current() is not first and certsas.fetches == 2
    clock.advance(600)  # expired: an outage now raises
    certsas.failure = Unreachable("cannot connect to app: connection refused")
    with pytest.raises(Unreachable):
        tokens.current()


def test_a_refusal_is_raised_even_while_the_token_is_valid(clock: ManualClock) -> None:
    certsas = Certsas(clock)
    tokens = ScopeTokens(Scope(), certsas, clock)
    tokens.current()
    clock.advance(500)
    certsas.failure = Refused(403, "certificate_revoked", "The client certificate is revoked.")
    with pytest.raises(Refused):
        tokens.current()


def test_renew_replaces_only_the_refused_token(clock: ManualClock) -> None:
    certsas = Certsas(clock)
    tokens = ScopeTokens(Scope(), certsas, clock)
    first = tokens.current()
    second = tokens.renew(first.signature)
    assert second.signature == "s2"
    assert tokens.renew(first.signature) is second  # another thread renewed already
    assert certsas.fetches == 2


def test_signature_of_a_url_or_a_query() -> None:
    assert signature_of("https://a/c/b?sv=1&sig=abc%2Bd") == "abc+d"
    assert signature_of("?sv=1&sig=xyz") == "xyz" and signature_of("sv=1") == ""


def test_redact_keeps_what_helps_and_drops_what_makes_a_token() -> None:
    line = ('"PUT /acct/c/b?comp=block&st=2026-11-23T10%3A00Z&se=2026-11-23T10%3A15Z&sp=rw'
            '&sv=2025-01-05&sr=c&skoid=abc&sig=AbCdEf%2B123456789012345 HTTP/1.1" 201')
    assert redact(line) == ('"PUT /acct/c/b?comp=block&st=REDACTED&se=REDACTED&sp=rw'
                            '&sv=2025-01-05&sr=c&skoid=REDACTED&sig=REDACTED HTTP/1.1" 201')


def test_a_clock_ahead_of_certsas_is_named(clock: ManualClock,
                                          caplog: pytest.LogCaptureFixture) -> None:
    certsas = Certsas(clock, ttl=-30)  # this machine's clock 30 s past the token's end
    ScopeTokens(Scope(), certsas, clock).current()
    assert "which this machine's clock says is past: is the clock right (NTP)?" in caplog.text


def test_a_renewed_token_is_in_the_credential_before_current_hands_it_out(
        clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another thread that calls current() while a renewal is being installed sends what the
    credential holds; were the new token handed out first, that thread would stamp the SAS
    Storage just refused and spend one of its retries on it."""
    certsas = Certsas(clock)
    tokens = ScopeTokens(Scope(), certsas, clock)
    refused = tokens.current()
    credential = tokens.credential()
    agreed: list[bool] = []
    update = AzureSasCredential.update

    def observed(self: AzureSasCredential, signature: str) -> None:
        agreed.append(tokens.current().token == self.signature)  # what another thread gets
        update(self, signature)

    monkeypatch.setattr(AzureSasCredential, "update", observed)
    renewed = tokens.renew(refused.signature)
    assert agreed == [True] and certsas.fetches == 2
    assert tokens.current() is renewed and credential.signature == renewed.token
