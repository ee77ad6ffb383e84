"""Signing Blob SAS tokens: service SAS with an account key (local), user delegation SAS (Azure).

Only container- or blob-scoped tokens are made, never an account SAS. Every token
starts a few minutes in the past, so a caller whose clock is a little behind the
service's can use it at once.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote, unquote_plus, urlsplit

from azure.core.exceptions import AzureError
from azure.storage.blob import UserDelegationKey, generate_blob_sas, generate_container_sas

from certsas.errors import DependencyUnavailable
from certsas.scope import Grant

CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class SignedToken:
    token: str
    url: str
    expires_on: datetime

    @property
    def signature_sha256(self) -> str:
        """SHA-256 of the ``sig`` value: what the audit keeps instead of the token."""
        # What parse_qs(token)["sig"] gives, without parsing every field (on the token path).
        signature = next((unquote_plus(field[4:]) for field in self.token.split("&")
                          if field.startswith("sig=")), "")
        return hashlib.sha256(signature.encode("ascii")).hexdigest()


class SasSigner(Protocol):
    def sign(self, grant: Grant, now: datetime, *, request_id: str | None = None
             ) -> SignedToken: ...


class DelegationKeySource(Protocol):
    """What fetches a user delegation key; ``BlobServiceClient`` is one."""

    def get_user_delegation_key(
        self, key_start_time: datetime, key_expiry_time: datetime
    ) -> UserDelegationKey: ...


def sign_grant(account_name: str, blob_endpoint: str, grant: Grant, now: datetime, *,
               protocol: str | None, **credential: Any) -> SignedToken:
    """A container or blob SAS for ``grant``, signed with ``credential`` (the SDK's
    ``account_key=`` or ``user_delegation_key=``), valid from a little before ``now``."""
    now = now.replace(microsecond=0)
    start, expiry = now - CLOCK_SKEW, now + timedelta(minutes=grant.ttl_minutes)
    common = {"permission": grant.permissions, "start": start, "expiry": expiry,
              "protocol": protocol, **credential}
    path = quote(grant.container, safe="")
    if grant.blob is None:
        token = generate_container_sas(account_name, grant.container, **common)
    else:
        token = generate_blob_sas(account_name, grant.container, grant.blob, **common)
        path += "/" + quote(grant.blob, safe="/")
    return SignedToken(token, f"{blob_endpoint.rstrip('/')}/{path}?{token}", expiry)


def is_loopback_http(endpoint: str) -> bool:
    """Is ``endpoint`` plain http on this machine (Azurite)? A real account's http://
    endpoint is not: its tokens still say ``spr=https``, so they never travel in clear."""
    parts = urlsplit(endpoint)
    if parts.scheme.lower() != "http":
        return False
    host = (parts.hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AccountKeySigner:
    """Service SAS signed with the account key (``STORAGE_CONNECTION_STRING``)."""

    def __init__(self, account_name: str, account_key: str, blob_endpoint: str) -> None:
        self._account_name = account_name
        self._account_key = account_key
        self._blob_endpoint = blob_endpoint.rstrip("/")
        # HTTPS-only tokens, except against a local emulator (Azurite) served over http.
        self._protocol = None if is_loopback_http(blob_endpoint) else "https"

    def sign(self, grant: Grant, now: datetime, *, request_id: str | None = None
             ) -> SignedToken:
        # A service SAS has no correlation field (scid is for user delegation SAS only).
        return sign_grant(self._account_name, self._blob_endpoint, grant, now,
                          protocol=self._protocol, account_key=self._account_key)


class UserDelegationSigner:
    """User delegation SAS (``STORAGE_ACCOUNT_NAME``, managed identity).

    The delegation key is fetched once and reused until less than ``refresh_before``
    of its life is left; ``refresh_before`` covers the longest token plus the skew,
    so no token can outlive the key that signed it. It is also dropped, and a new one
    fetched before the next token, whenever ``epoch`` (certsas.epoch.EpochWatch) reports
    a signing epoch newer than the key's: the keys were revoked (SPEC §2b).
    The request id goes into the token's correlation field (``scid``, SPEC §1).
    """

    def __init__(
        self,
        account_name: str,
        blob_endpoint: str,
        source: DelegationKeySource,
        *,
        max_ttl_minutes: int,
        key_lifetime: timedelta = timedelta(hours=24),
        epoch: Callable[[], int] = lambda: 0,
    ) -> None:
        self._account_name = account_name
        self._blob_endpoint = blob_endpoint.rstrip("/")
        self._source = source
        self._refresh_before = timedelta(minutes=max_ttl_minutes) + 2 * CLOCK_SKEW
        self._key_lifetime = max(key_lifetime, self._refresh_before * 2)
        self._key: UserDelegationKey | None = None
        self._key_expiry: datetime | None = None
        self._epoch = epoch
        self._key_generation = 0
        self._lock = threading.Lock()

    def delegation_key(self, now: datetime) -> UserDelegationKey:
        generation = self._epoch()  # outside the lock: it may read the table
        with self._lock:
            if generation > self._key_generation:
                # Revoked: never sign with it again, even if the new fetch fails.
                self._key, self._key_generation = None, generation
            stale = self._key_expiry is None or now + self._refresh_before >= self._key_expiry
            if self._key is None or stale:
                start = now.replace(microsecond=0) - CLOCK_SKEW
                expiry = min(start + self._key_lifetime, now + timedelta(days=7) - CLOCK_SKEW)
                try:
                    self._key = self._source.get_user_delegation_key(start, expiry)
                except AzureError as exc:
                    raise DependencyUnavailable(
                        f"user delegation key request failed: {type(exc).__name__}"
                    ) from None
                self._key_expiry = expiry
            return self._key

    def sign(self, grant: Grant, now: datetime, *, request_id: str | None = None
             ) -> SignedToken:
        return sign_grant(self._account_name, self._blob_endpoint, grant, now, protocol="https",
                          user_delegation_key=self.delegation_key(now),
                          correlation_id=request_id)
