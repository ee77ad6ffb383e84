"""The token of one scope, kept fresh: replaced when less than a fifth of its lifetime is left,
renewed when Storage refused it, fetched by one thread at a time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from azure.core.credentials import AzureSasCredential

from certsas.client.errors import Unreachable
from certsas.client.tokens import Scope, Token

Clock = Callable[[], datetime]
Fetch = Callable[[Scope], Token]

# A token is replaced once less than this share of its lifetime is left (SPEC §6a).
REFRESH_WHEN_LEFT = 0.2
# After certsas could not be reached while the current token is still valid, wait this long
# before asking again, so that every request does not wait for a timeout.
RETRY_UNREACHABLE_AFTER = timedelta(seconds=5)

log = logging.getLogger("certsas.client")


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Held:
    token: Token
    received_at: datetime
    not_before: datetime | None = None  # no new attempt before then (after a failed one)

    def stale(self, now: datetime) -> bool:
        lifetime = self.token.expires_on - self.received_at
        return self.token.expires_on - now < lifetime * REFRESH_WHEN_LEFT

    def expired(self, now: datetime) -> bool:
        return now >= self.token.expires_on


class ScopeTokens:
    """The current token of one scope and the AzureSasCredential its Storage clients share."""

    def __init__(self, scope: Scope, fetch: Fetch, clock: Clock = system_clock) -> None:
        self.scope = scope
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._held: _Held | None = None
        self._credential: AzureSasCredential | None = None

    def __repr__(self) -> str:
        return f"ScopeTokens({self.scope!r})"

    def credential(self) -> AzureSasCredential:
        """The credential the Storage clients of this scope read their SAS from."""
        self.current()
        assert self._credential is not None  # current() installed a token
        return self._credential

    def current(self) -> Token:
        """A token with at least a fifth of its lifetime left, or, while another thread
        fetches its successor or certsas cannot be reached, the valid one in hand."""
        held, now = self._held, self._clock()
        if held is not None and not held.stale(now):
            return held.token
        if held is not None and not held.expired(now):
            if not self._lock.acquire(blocking=False):
                return held.token  # another thread is fetching; this one is still good
        else:
            self._lock.acquire()
        try:
            return self._replace_stale()
        finally:
            self._lock.release()

    def renew(self, refused_signature: str) -> Token:
        """A new token after Storage refused the one signed ``refused_signature``, unless
        another thread has replaced that one already."""
        with self._lock:
            held = self._held
            if held is not None and held.token.signature != refused_signature:
                return held.token
            return self._install(self._fetch(self.scope))

    def _replace_stale(self) -> Token:
        held, now = self._held, self._clock()
        if held is not None and not held.stale(now):
            return held.token  # replaced while this thread waited for the lock
        if held is not None and held.not_before is not None and now < held.not_before \
                and not held.expired(now):
            return held.token
        try:
            return self._install(self._fetch(self.scope))
        except Unreachable as exc:
            if held is None or held.expired(now):
                raise
            log.warning("certsas.client: could not replace the token for %s (%s); using the "
                        "current one, valid until %s", self.scope.describe(), exc,
                        f"{held.token.expires_on:%Y-%m-%dT%H:%M:%SZ}")
            self._held = replace(held, not_before=now + RETRY_UNREACHABLE_AFTER)
            return held.token

    def _install(self, token: Token) -> Token:
        now = self._clock()
        if token.expires_on <= now:
            # Every call would fetch again; Storage, on its own clock, still takes the token.
            log.warning("certsas.client: a new token expires at %s, which this machine's clock "
                        "says is past: is the clock right (NTP)?",
                        f"{token.expires_on:%Y-%m-%dT%H:%M:%SZ}")
        # The credential first: a thread that sees the new token in _held (current() reads it
        # without the lock) must find it in the credential too, not the one it replaces.
        if self._credential is None:
            self._credential = AzureSasCredential(token.token)
        else:
            self._credential.update(token.token)
        self._held = _Held(token, now)
        where = f"{token.container}/{token.blob}" if token.blob else token.container
        log.info("certsas.client: new token for %s (%s, expires %s)", where, token.permissions,
                 f"{token.expires_on:%Y-%m-%dT%H:%M:%SZ}")
        return token
