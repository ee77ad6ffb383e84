"""A stand-in for an azure-identity credential (Entra ID cannot run here) that caches as
azure-identity does: ``get_token_info`` hands back the token it holds until that nears its
``refresh_on`` or expiry, unless the request carries ``claims``, which skip the cache
(azure-identity's managed identity clients: ``get_cached_token`` returns nothing when
claims are given; MSAL's ``acquire_token_for_client`` refreshes on a claims challenge).
``tests/integration/test_tables.py`` checks that claim against azure-identity itself."""

from __future__ import annotations

import threading

from azure.core.credentials import AccessTokenInfo, TokenRequestOptions
from azure.core.exceptions import ClientAuthenticationError

from certsas.tableauth import STORAGE_SCOPE


class CachingCredential:
    def __init__(self, *, lifetime: int = 3600, refresh_in: int | None = None,
                 now: float = 1_000_000.0) -> None:
        self.now = now
        self.lifetime = lifetime
        self.refresh_in = refresh_in
        self.issued = 0
        self.requests: list[TokenRequestOptions] = []
        self.failing = False
        self._cached: AccessTokenInfo | None = None
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None
                       ) -> AccessTokenInfo:
        assert scopes == (STORAGE_SCOPE,)
        with self._lock:
            self.requests.append(dict(options or {}))  # type: ignore[arg-type]
            cached = self._cached
            fresh = cached is not None and not (options or {}).get("claims") and (
                self.now < (cached.refresh_on or cached.expires_on - 300))
            if cached is not None and fresh:
                return cached
            if self.failing:
                raise ClientAuthenticationError("identity endpoint unreachable")
            self.issued += 1
            refresh_on = int(self.now) + self.refresh_in if self.refresh_in else None
            self._cached = AccessTokenInfo(f"entra-token-{self.issued}",
                                           int(self.now) + self.lifetime, refresh_on=refresh_on)
            return self._cached
