"""Settings: read once from the environment, checked, and frozen.

Every problem is a :class:`ConfigurationError` naming the setting, raised when the
app starts, so a misconfigured deployment fails loudly instead of refusing every
request for a reason nobody can see.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from certsas.errors import ConfigurationError

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key: public, documented, and useless outside a laptop.
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class OcspMode(enum.Enum):
    REQUIRE = "require"
    SOFT_FAIL = "soft-fail"
    OFF = "off"


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


@dataclass(frozen=True)
class Settings:
    trust_anchors: tuple[x509.Certificate, ...]
    storage: StorageAccess
    cert_table: str = "ClientCertificates"
    audit_table: str = "TokenAudit"
    client_cert_header: str = "X-ARR-ClientCert"
    ocsp_mode: OcspMode = OcspMode.REQUIRE
    ocsp_responder_url: str | None = None
    ocsp_timeout_seconds: float = 3.0
    ocsp_cache_max_seconds: int = 3600
    sas_default_ttl_minutes: int = 15
    sas_max_ttl_minutes: int = 60
    registry_cache_seconds: int = 30
    storage_timeout_seconds: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read and check every setting of SPEC §3; raise on the first problem."""

        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        default_ttl = _integer(env, "SAS_DEFAULT_TTL_MINUTES", 15, minimum=1)
        max_ttl = _integer(env, "SAS_MAX_TTL_MINUTES", 60, minimum=1)
        if default_ttl > max_ttl:
            raise ConfigurationError(
                "SAS_DEFAULT_TTL_MINUTES", f"{default_ttl} is above SAS_MAX_TTL_MINUTES ({max_ttl})"
            )
        # Short-lived means at most a day; it also leaves a user delegation key (seven days
        # at most) room to be reused for a day before it must be refreshed.
        if max_ttl > 24 * 60:
            raise ConfigurationError("SAS_MAX_TTL_MINUTES", "must be at most 1440 (one day)")
        header = text("CLIENT_CERT_HEADER") or "X-ARR-ClientCert"
        if not _HEADER_NAME.match(header):
            raise ConfigurationError("CLIENT_CERT_HEADER", f"{header!r} is not an HTTP header name")
        responder = text("OCSP_RESPONDER_URL")
        if responder is not None and not responder.startswith(("http://", "https://")):
            raise ConfigurationError("OCSP_RESPONDER_URL", "must be an http:// or https:// URL")
        return cls(
            trust_anchors=parse_trust_anchors(env.get("TRUSTED_CA_CERTS", "")),
            storage=_storage_access(text("STORAGE_CONNECTION_STRING"), text("STORAGE_ACCOUNT_NAME"),
                                    text("AZURE_CLIENT_ID")),
            cert_table=_table_name(env, "CERT_TABLE_NAME", "ClientCertificates"),
            audit_table=_table_name(env, "AUDIT_TABLE_NAME", "TokenAudit"),
            client_cert_header=header,
            ocsp_mode=_ocsp_mode(text("OCSP_MODE")),
            ocsp_responder_url=responder,
            ocsp_timeout_seconds=_number(env, "OCSP_TIMEOUT_SECONDS", 3.0),
            ocsp_cache_max_seconds=_integer(env, "OCSP_CACHE_MAX_SECONDS", 3600, minimum=0),
            sas_default_ttl_minutes=default_ttl,
            sas_max_ttl_minutes=max_ttl,
            registry_cache_seconds=_integer(env, "REGISTRY_CACHE_SECONDS", 30, minimum=0),
            storage_timeout_seconds=_number(env, "STORAGE_TIMEOUT_SECONDS", 5.0),
        )


def storage_from_env(env: Mapping[str, str]) -> StorageAccess:
    """Only the storage settings: what the admin CLI needs (no trust anchors)."""

    def text(name: str) -> str | None:
        return env.get(name, "").strip() or None

    return _storage_access(
        text("STORAGE_CONNECTION_STRING"), text("STORAGE_ACCOUNT_NAME"), text("AZURE_CLIENT_ID")
    )


def load_local_settings(path: Path) -> dict[str, str]:
    """The ``Values`` of a ``local.settings.json`` (as ``func start`` reads it), or {}."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigurationError(str(path), f"cannot be read as JSON ({exc})") from None
    values = document.get("Values", {}) if isinstance(document, dict) else {}
    if not isinstance(values, dict):
        raise ConfigurationError(str(path), "Values is not an object")
    return {str(key): str(value) for key, value in values.items()}


def parse_trust_anchors(pem: str) -> tuple[x509.Certificate, ...]:
    """Parse ``TRUSTED_CA_CERTS``: one or more PEM CA certificates."""
    name = "TRUSTED_CA_CERTS"
    # App settings pasted from a one-line JSON value sometimes keep literal "\n".
    if "\n" not in pem and "\\n" in pem:
        pem = pem.replace("\\n", "\n")
    if not pem.strip():
        raise ConfigurationError(name, "is required: PEM text of one or more trust anchors")
    try:
        anchors = x509.load_pem_x509_certificates(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise ConfigurationError(name, f"is not PEM certificate text ({exc})") from None
    for index, cert in enumerate(anchors, start=1):
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise ConfigurationError(
                name, f"certificate {index} ({cert.subject.rfc4514_string()}) is not a CA"
            )
    return tuple(anchors)


def parse_connection_string(value: str) -> AccountKeyAccess:
    """Parse a Storage connection string into what SAS signing and the clients need."""
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
        return AccountKeyAccess(
            account_name=AZURITE_ACCOUNT,
            account_key=AZURITE_KEY,
            blob_endpoint=f"http://127.0.0.1:10000/{AZURITE_ACCOUNT}",
            table_endpoint=f"http://127.0.0.1:10002/{AZURITE_ACCOUNT}",
            connection_string=value,
        )
    account = parts.get("accountname")
    account_key = parts.get("accountkey")
    if not account or not account_key:
        raise ConfigurationError(
            name, "needs AccountName and AccountKey (a SAS-only string cannot sign tokens)"
        )
    protocol = parts.get("defaultendpointsprotocol", "https")
    suffix = parts.get("endpointsuffix", "core.windows.net")
    blob = parts.get("blobendpoint") or f"{protocol}://{account}.blob.{suffix}"
    table = parts.get("tableendpoint") or f"{protocol}://{account}.table.{suffix}"
    return AccountKeyAccess(
        account_name=account,
        account_key=account_key,
        blob_endpoint=blob.rstrip("/"),
        table_endpoint=table.rstrip("/"),
        connection_string=value,
    )


def _storage_access(
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
            raise ConfigurationError("STORAGE_ACCOUNT_NAME", f"{account_name!r} is not an account name")
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


def _ocsp_mode(value: str | None) -> OcspMode:
    try:
        return OcspMode((value or "require").lower())
    except ValueError:
        raise ConfigurationError("OCSP_MODE", f"{value!r} is not one of require, soft-fail, off") from None


def _integer(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(name, f"{raw!r} is not a whole number") from None
    if value < minimum:
        raise ConfigurationError(name, f"must be at least {minimum}")
    return value


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(name, f"{raw!r} is not a number") from None
    if not 0 < value <= 60:
        raise ConfigurationError(name, "must be above 0 and at most 60 seconds")
    return value


def _table_name(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,62}", value):
        raise ConfigurationError(name, f"{value!r} is not a valid table name")
    return value
