"""How the lean Table client (certsas/tables.py) signs its requests: Shared Key, or an
Entra ID bearer token from an azure-identity credential.

A bearer token is renewed at the credential's ``refresh_on`` when it gives one
(azure-core's ``AccessTokenInfo``; managed identity does), else five minutes before it
expires; while the old token is still valid, a renewal that fails keeps the old one, as
azure-identity itself does. After a 401 the token is renewed for real: azure-identity
answers ``get_token_info`` from its cache until the token is near expiry, so asking
again would hand back the refused token. A request with ``claims`` skips the cache
(azure-identity's and MSAL's managed identity clients both look the cache up only
without claims); the claims are the 401's own challenge when it carries one (Continuous
Access Evaluation), else an empty claims request, ``{}``, which asks for nothing more.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Protocol

from azure.core.credentials import AccessTokenInfo, TokenRequestOptions

STORAGE_SCOPE = "https://storage.azure.com/.default"
TOKEN_REFRESH_MARGIN_SECONDS = 300.0
TOKEN_EXPIRY_FLOOR_SECONDS = 60.0  # closer to expiry than this, a token is not sent
NO_EXTRA_CLAIMS = "{}"
# RFC 6750 §3 challenge parameters: name="value" (claims are base64url, no quotes inside).
_CHALLENGE_PARAMETER = re.compile(r'([A-Za-z_]+)\s*=\s*"([^"]*)"')

logger = logging.getLogger("certsas.tables")


class TokenSource(Protocol):
    """What azure-identity's credentials offer (``DefaultAzureCredential`` and friends)."""

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None
                       ) -> AccessTokenInfo: ...


class Authorizer(Protocol):
    def authorization(self, method: str, path: str, content_type: str, date: str) -> str: ...

    def refused(self, authorization: str, challenge: str | None) -> bool:
        """The service answered 401 to ``authorization``; True if a retry may now succeed."""
        ...


class SharedKey:
    """Shared Key authorization for the Table service (the SDK's string to sign)."""

    def __init__(self, account_name: str, account_key: str) -> None:
        self._account = account_name
        self._key = base64.b64decode(account_key)

    def authorization(self, method: str, path: str, content_type: str, date: str) -> str:
        # The query string is never signed for Table, except comp=, which we never send.
        signed = f"{method}\n\n{content_type}\n{date}\n/{self._account}{path.split('?')[0]}"
        digest = hmac.new(self._key, signed.encode("utf-8"), hashlib.sha256).digest()
        return f"SharedKey {self._account}:{base64.b64encode(digest).decode('ascii')}"

    def refused(self, authorization: str, challenge: str | None) -> bool:
        return False  # a key has nothing to renew: the same signature would fail again


class BearerToken:
    """An Entra ID token for Azure Storage, fetched once and renewed (see the module doc)."""

    def __init__(self, credential: TokenSource, *, clock: Callable[[], float] = time.time,
                 refresh_margin: float = TOKEN_REFRESH_MARGIN_SECONDS) -> None:
        self._credential = credential
        self._clock = clock
        self._margin = refresh_margin
        self._lock = threading.Lock()
        self._token: AccessTokenInfo | None = None

    def authorization(self, method: str, path: str, content_type: str, date: str) -> str:
        with self._lock:  # one fetch at a time; the others wait for it
            now = self._clock()
            token = self._token
            if token is None or token.expires_on - now < TOKEN_EXPIRY_FLOOR_SECONDS:
                token = self._fetch(None)
            elif now >= self._renew_at(token):
                try:
                    token = self._fetch(None)
                except Exception as exc:  # still valid: use it, try again on the next call
                    logger.warning("storage token not renewed yet (%s); the current one is "
                                   "valid for %d s", type(exc).__name__, token.expires_on - now)
            self._token = token
            return f"Bearer {token.token}"

    def refused(self, authorization: str, challenge: str | None) -> bool:
        """After a 401: fetch a token the credential did not take from its cache."""
        with self._lock:
            if self._token is not None and f"Bearer {self._token.token}" != authorization:
                return True  # another caller's 401 has renewed it already
            self._token = None
            self._token = self._fetch(challenge_claims(challenge) or NO_EXTRA_CLAIMS)
        return True

    def _renew_at(self, token: AccessTokenInfo) -> float:
        if token.refresh_on:
            return min(float(token.refresh_on), token.expires_on - TOKEN_EXPIRY_FLOOR_SECONDS)
        return token.expires_on - self._margin

    def _fetch(self, claims: str | None) -> AccessTokenInfo:
        options: TokenRequestOptions = {"claims": claims} if claims else {}
        return self._credential.get_token_info(STORAGE_SCOPE, options=options)


def challenge_claims(challenge: str | None) -> str | None:
    """The decoded ``claims`` of a Bearer ``insufficient_claims`` challenge (CAE), if any."""
    if not challenge or not challenge.lstrip().lower().startswith("bearer"):
        return None
    parameters = {name.lower(): value for name, value in _CHALLENGE_PARAMETER.findall(challenge)}
    encoded = parameters.get("claims")
    if parameters.get("error") != "insufficient_claims" or not encoded:
        return None
    try:
        claims = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_",
                                  validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return claims or None
