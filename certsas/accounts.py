"""Which storage account certsas uses, and how it proves who it is (SPEC §3).

Either a connection string (local and dev: an account key, which also signs SAS
tokens) or an account name (Azure: a managed identity, and user delegation SAS).
Every part the SDK would read is checked here, so a malformed value fails as one
named setting at start-up, never quoting the value: it may hold a key.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from certsas.errors import ConfigurationError

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key: public, documented, and useless outside a laptop.
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@dataclass(frozen=True)
class AccountKeyAccess:
    """Local/dev access: account name and key, from a connection string (Azurite)."""

    account_name: str
    account_key: str = field(repr=False)
    blob_endpoint: str
    table_endpoint: str
    connection_string: str = field(repr=False)


@dataclass(frozen=True)
class ManagedIdentityAccess:
    """Azure access: managed identity for data and user delegation keys for SAS."""

    account_name: str
    blob_endpoint: str
    table_endpoint: str
    client_id: str | None = None


StorageAccess = AccountKeyAccess | ManagedIdentityAccess


def storage_access(
    connection_string: str | None, account_name: str | None, client_id: str | None
) -> StorageAccess:
    if connection_string and account_name:
        raise ConfigurationError(
            "STORAGE_CONNECTION_STRING",
            "set exactly one of STORAGE_CONNECTION_STRING and STORAGE_ACCOUNT_NAME, not both",
        )
    if connection_string:
        return parse_connection_string(connection_string)
    if account_name:
        if not re.fullmatch(r"[a-z0-9]{3,24}", account_name):
            raise ConfigurationError(
                "STORAGE_ACCOUNT_NAME",
                "is not a storage account name (3 to 24 lowercase letters and digits; "
                "a connection string belongs in STORAGE_CONNECTION_STRING)")
        return ManagedIdentityAccess(
            account_name=account_name,
            blob_endpoint=f"https://{account_name}.blob.core.windows.net",
            table_endpoint=f"https://{account_name}.table.core.windows.net",
            client_id=client_id,
        )
    raise ConfigurationError(
        "STORAGE_ACCOUNT_NAME",
        "set STORAGE_ACCOUNT_NAME (managed identity) or STORAGE_CONNECTION_STRING (local)",
    )


def parse_connection_string(value: str) -> AccountKeyAccess:
    """Parse a Storage connection string into what SAS signing and the clients need.

    Every part the SDK would read is checked here, so a malformed string fails as one
    named setting at start-up, not as an SDK exception later; the SDK then gets a
    string composed from the checked parts only.
    """
    name = "STORAGE_CONNECTION_STRING"
    parts: dict[str, str] = {}
    for number, segment in enumerate(value.split(";"), start=1):
        if not segment.strip():
            continue
        key, sep, val = segment.partition("=")
        if not sep:
            # Numbered, not quoted: a mangled segment may be part of the account key.
            raise ConfigurationError(name, f"segment {number} has no '=' (Name=value expected)")
        parts[key.strip().lower()] = val.strip()
    if parts.get("usedevelopmentstorage", "").lower() == "true":
        if set(parts) - {"usedevelopmentstorage"}:
            raise ConfigurationError(name, "UseDevelopmentStorage=true takes no other fields")
        return _account_key_access(AZURITE_ACCOUNT, AZURITE_KEY, "http",
                                   f"http://127.0.0.1:10000/{AZURITE_ACCOUNT}",
                                   f"http://127.0.0.1:10002/{AZURITE_ACCOUNT}")
    account = parts.get("accountname")
    account_key = parts.get("accountkey")
    if not account or not account_key:
        raise ConfigurationError(
            name, "needs AccountName and AccountKey (a SAS-only string cannot sign tokens)"
        )
    if not re.fullmatch(r"[A-Za-z0-9]{1,64}", account):
        raise ConfigurationError(name, "AccountName is not a storage account name")
    if not _is_base64(account_key):
        raise ConfigurationError(name, "AccountKey is not base64 (copy the whole key)")
    protocol = parts.get("defaultendpointsprotocol", "https").lower()
    if protocol not in ("http", "https"):
        raise ConfigurationError(name, "DefaultEndpointsProtocol must be http or https")
    suffix = parts.get("endpointsuffix", "core.windows.net")
    if not re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", suffix):
        raise ConfigurationError(name, "EndpointSuffix is not a DNS suffix (core.windows.net)")
    blob = parts.get("blobendpoint") or f"{protocol}://{account}.blob.{suffix}"
    table = parts.get("tableendpoint") or f"{protocol}://{account}.table.{suffix}"
    for setting, endpoint in (("BlobEndpoint", blob), ("TableEndpoint", table)):
        if not _is_endpoint(endpoint):
            raise ConfigurationError(name, f"{setting} is not an http(s) URL")
    return _account_key_access(account, account_key, protocol, blob, table)


def _account_key_access(account: str, key: str, protocol: str, blob: str,
                        table: str) -> AccountKeyAccess:
    blob, table = blob.rstrip("/"), table.rstrip("/")
    composed = (f"DefaultEndpointsProtocol={protocol};AccountName={account};AccountKey={key};"
                f"BlobEndpoint={blob};TableEndpoint={table}")
    return AccountKeyAccess(account_name=account, account_key=key, blob_endpoint=blob,
                            table_endpoint=table, connection_string=composed)


def _is_base64(text: str) -> bool:
    if len(text) % 4 or not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", text):
        return False
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _is_endpoint(endpoint: str) -> bool:
    """An http(s) URL with a host (name or IP literal), an optional port, a path, nothing else."""
    if not re.fullmatch(r"https?://[^\s/?#@]+(/[^\s?#;]*)?", endpoint, re.IGNORECASE):
        return False
    try:
        parts = urlsplit(endpoint)
        port = parts.port  # raises ValueError outside 0..65535
        host = parts.hostname or ""
    except ValueError:
        return False
    if host.startswith("[") or ":" in host:
        try:
            ipaddress.IPv6Address(host.strip("[]"))
        except ValueError:
            return False
    elif not re.fullmatch(r"[A-Za-z0-9.-]+", host) or ".." in host or host.startswith("."):
        return False
    return port != 0
