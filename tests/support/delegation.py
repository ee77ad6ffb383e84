"""User delegation keys without Entra ID: a counting key source, and Storage's own check.

Azurite cannot issue or check user delegation keys, so the signer's key source is this
stand-in (behind certsas.sas.DelegationKeySource), and a token is checked here the way
Storage checks it: the HMAC-SHA256, under the key, of the string-to-sign that the token's
own fields spell out (the documented layout, docs/operations.md cites it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from datetime import datetime
from urllib.parse import parse_qs, unquote, urlsplit

from azure.storage.blob import UserDelegationKey

OID = "11111111-1111-1111-1111-111111111111"
TID = "22222222-2222-2222-2222-222222222222"


class CountingKeySource:
    """Hands out a new, distinct key per request, and counts the requests."""

    def __init__(self, tag: str = "") -> None:
        self.tag = tag or str(os.getpid())
        self.keys: list[UserDelegationKey] = []
        self._lock = threading.Lock()

    @property
    def fetches(self) -> int:
        return len(self.keys)

    def get_user_delegation_key(self, key_start_time: datetime,
                                key_expiry_time: datetime) -> UserDelegationKey:
        with self._lock:
            key = UserDelegationKey()  # type: ignore[no-untyped-call]
            key.signed_oid, key.signed_tid = OID, TID
            key.signed_start = key_start_time.strftime("%Y-%m-%dT%H:%M:%SZ")
            key.signed_expiry = key_expiry_time.strftime("%Y-%m-%dT%H:%M:%SZ")
            key.signed_service, key.signed_version = "b", "2025-01-05"
            key.value = base64.b64encode(
                hashlib.sha256(f"{self.tag}/{len(self.keys)}".encode()).digest()).decode()
            self.keys.append(key)
            return key


# Versions from 2025-07-05 add the delegated user's tenant and object id after scid, and
# the signed request headers and query parameters after ses (empty in certsas's tokens).
_NEWER = "2025-07-05"


def string_to_sign(url: str) -> str:
    """The user delegation SAS string-to-sign for ``url``'s token (version 2020-12-06 on)."""
    parts = urlsplit(url)
    f = {key: values[0] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
    account = parts.hostname.split(".")[0] if parts.hostname else ""
    path = unquote(parts.path)
    resource = f"/blob/{account}{path}"
    get = f.get
    fields = [get("sp", ""), get("st", ""), get("se", ""), resource,
              get("skoid", ""), get("sktid", ""), get("skt", ""), get("ske", ""),
              get("sks", ""), get("skv", ""), get("saoid", ""), get("suoid", ""),
              get("scid", "")]
    newer = get("sv", "") >= _NEWER
    if newer:
        fields += [get("skdutid", ""), get("sduoid", "")]
    fields += [get("sip", ""), get("spr", ""), get("sv", ""), get("sr", ""),
               get("snapshot", ""), get("ses", "")]
    if newer:
        fields += [get("srh", ""), get("srq", "")]
    fields += [get("rscc", ""), get("rscd", ""), get("rsce", ""), get("rscl", ""),
               get("rsct", "")]
    return "\n".join(fields)


def signed_by(url: str, key: UserDelegationKey) -> bool:
    """Would Storage accept ``url``'s signature as made with ``key``?"""
    signature = parse_qs(urlsplit(url).query)["sig"][0]
    assert key.value is not None
    expected = hmac.new(base64.b64decode(key.value), string_to_sign(url).encode("utf-8"),
                        hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64decode(signature), expected)
