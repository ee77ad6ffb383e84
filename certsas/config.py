"""Settings (SPEC §3): read once from the environment, checked, and frozen.

Every problem is a :class:`ConfigurationError` naming the setting and what is wrong
with it. Each setting is read on its own and a wrong one does not stop the others
being read, so one reading raises :class:`ConfigurationErrors` naming every problem
at once: the app logs them at start-up (certsas.runtime) and answers 503 until they
are fixed. A message never repeats a setting's value: a value pasted into the wrong
setting may be a key.

A new check of one setting is a function that raises ConfigurationError, read through
``Problems.read`` where its setting is read; the checks many settings share (numbers,
seconds, URLs, table names, networks, Key Vault references) are in
:mod:`certsas.envvalues`.

Each default lives here once; the app and the command line read the same settings
through the same functions.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from certsas.accounts import StorageAccess, storage_access
from certsas.envvalues import (
    Network,
    Problems,
    ncrontab_problem,
    parse_networks,
    read_integer,
    read_seconds,
    read_table_name,
    read_text,
    read_url,
    refuse_key_vault_reference,
)
from certsas.errors import ConfigurationError

DEFAULT_CERT_TABLE = "ClientCertificates"
DEFAULT_AUDIT_TABLE = "TokenAudit"
DEFAULT_CLIENT_CERT_HEADER = "X-ARR-ClientCert"
DEFAULT_BLOCKED_NETWORKS = "169.254.0.0/16,fe80::/10,168.63.129.16/32"
DEFAULT_EXPIRY_CHECK_SCHEDULE = "0 0 6 * * *"
# Short-lived means at most a day; it also leaves a user delegation key (seven days at
# most) room to be reused for a day before it must be refreshed.
MAX_SAS_TTL_MINUTES = 24 * 60

_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class RevocationMode(enum.Enum):
    REQUIRE = "require"
    SOFT_FAIL = "soft-fail"
    OFF = "off"


class RevocationSource(enum.Enum):
    OCSP = "ocsp"
    CRL = "crl"


@dataclass(frozen=True)
class StorageSettings:
    """What the app and the command line share: the account, its tables, the timeout."""

    access: StorageAccess
    cert_table: str = DEFAULT_CERT_TABLE
    audit_table: str = DEFAULT_AUDIT_TABLE
    timeout_seconds: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StorageSettings:
        problems = Problems()
        access = problems.read(lambda: storage_access(
            read_text(env, "STORAGE_CONNECTION_STRING"), read_text(env, "STORAGE_ACCOUNT_NAME"),
            read_text(env, "AZURE_CLIENT_ID")), None)
        cert_table = problems.read(
            lambda: read_table_name(env, "CERT_TABLE_NAME", DEFAULT_CERT_TABLE), DEFAULT_CERT_TABLE)
        audit_table = problems.read(
            lambda: read_table_name(env, "AUDIT_TABLE_NAME", DEFAULT_AUDIT_TABLE), DEFAULT_AUDIT_TABLE)
        timeout = problems.read(lambda: read_seconds(env, "STORAGE_TIMEOUT_SECONDS", 5.0), 5.0)
        problems.check()
        assert access is not None  # it was read, or check() raised its problem
        return cls(access=access, cert_table=cert_table, audit_table=audit_table,
                   timeout_seconds=timeout)


@dataclass(frozen=True)
class RevocationSettings:
    """SPEC §2a: which sources are asked, how, and within what budget."""

    mode: RevocationMode = RevocationMode.REQUIRE
    sources: tuple[RevocationSource, ...] = (RevocationSource.OCSP, RevocationSource.CRL)
    ocsp_responder_url: str | None = None
    ocsp_timeout_seconds: float = 3.0
    ocsp_cache_max_seconds: int = 3600
    crl_url: str | None = None
    crl_timeout_seconds: float = 10.0
    crl_max_bytes: int = 20 * 1024 * 1024
    blocked_networks: tuple[Network, ...] = field(
        default_factory=lambda: parse_networks(DEFAULT_BLOCKED_NETWORKS, "REVOCATION_BLOCKED_NETWORKS"))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RevocationSettings:
        problems = Problems()
        default = cls()
        settings = cls(
            mode=problems.read(lambda: _revocation_mode(env), default.mode),
            sources=problems.read(lambda: _sources(read_text(env, "REVOCATION_SOURCES")),
                                  default.sources),
            ocsp_responder_url=problems.read(lambda: read_url(env, "OCSP_RESPONDER_URL"), None),
            ocsp_timeout_seconds=problems.read(
                lambda: read_seconds(env, "OCSP_TIMEOUT_SECONDS", 3.0), 3.0),
            ocsp_cache_max_seconds=problems.read(
                lambda: read_integer(env, "OCSP_CACHE_MAX_SECONDS", 3600, minimum=0), 3600),
            crl_url=problems.read(lambda: read_url(env, "CRL_URL"), None),
            crl_timeout_seconds=problems.read(
                lambda: read_seconds(env, "CRL_TIMEOUT_SECONDS", 10.0), 10.0),
            crl_max_bytes=problems.read(
                lambda: read_integer(env, "CRL_MAX_BYTES", 20 * 1024 * 1024, minimum=1024),
                default.crl_max_bytes),
            # Empty means the default: an operator opts out of a block by naming other networks.
            blocked_networks=problems.read(lambda: parse_networks(
                read_text(env, "REVOCATION_BLOCKED_NETWORKS") or DEFAULT_BLOCKED_NETWORKS,
                "REVOCATION_BLOCKED_NETWORKS"), default.blocked_networks),
        )
        problems.check()
        return settings


@dataclass(frozen=True)
class Settings:
    trust_anchors: tuple[x509.Certificate, ...]
    storage: StorageSettings
    client_cert_header: str = DEFAULT_CLIENT_CERT_HEADER
    revocation: RevocationSettings = field(default_factory=RevocationSettings)
    sas_default_ttl_minutes: int = 15
    sas_max_ttl_minutes: int = 60
    registry_cache_seconds: int = 30
    expiry_warning_days: int = 30
    expiry_check_schedule: str = DEFAULT_EXPIRY_CHECK_SCHEDULE
    audit_partitions: int = 16

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read and check every setting of SPEC §3; raise :class:`ConfigurationErrors`
        naming every problem found."""
        problems = Problems()
        anchors: tuple[x509.Certificate, ...] = problems.read(
            lambda: parse_trust_anchors(env.get("TRUSTED_CA_CERTS", "")), ())
        storage = problems.read(lambda: StorageSettings.from_env(env), None)
        header = problems.read(lambda: client_cert_header(env), DEFAULT_CLIENT_CERT_HEADER)
        revocation = problems.read(lambda: RevocationSettings.from_env(env), RevocationSettings())
        default_ttl = problems.read(
            lambda: read_integer(env, "SAS_DEFAULT_TTL_MINUTES", 15, minimum=1), 15)
        max_ttl = problems.read(lambda: read_integer(env, "SAS_MAX_TTL_MINUTES", 60, minimum=1,
                                                 maximum=MAX_SAS_TTL_MINUTES), 60)
        if default_ttl > max_ttl:
            problems.add(ConfigurationError("SAS_DEFAULT_TTL_MINUTES", "is above SAS_MAX_TTL_MINUTES"))
        cache_seconds = problems.read(
            lambda: read_integer(env, "REGISTRY_CACHE_SECONDS", 30, minimum=0), 30)
        warning_days = problems.read(
            lambda: read_integer(env, "EXPIRY_WARNING_DAYS", 30, minimum=1, maximum=3650), 30)
        schedule = problems.read(lambda: expiry_check_schedule(env), DEFAULT_EXPIRY_CHECK_SCHEDULE)
        partitions = problems.read(
            lambda: read_integer(env, "AUDIT_PARTITIONS", 16, minimum=1, maximum=100), 16)
        problems.check()
        assert storage is not None  # it was read, or check() raised its problem
        return cls(
            trust_anchors=anchors, storage=storage, client_cert_header=header,
            revocation=revocation, sas_default_ttl_minutes=default_ttl,
            sas_max_ttl_minutes=max_ttl, registry_cache_seconds=cache_seconds,
            expiry_warning_days=warning_days, expiry_check_schedule=schedule,
            audit_partitions=partitions,
        )


def client_cert_header(env: Mapping[str, str]) -> str:
    header = read_text(env, "CLIENT_CERT_HEADER") or DEFAULT_CLIENT_CERT_HEADER
    if not _HEADER_NAME.match(header):
        raise ConfigurationError("CLIENT_CERT_HEADER", "is not an HTTP header name")
    return header


def expiry_check_schedule(env: Mapping[str, str]) -> str:
    """``EXPIRY_CHECK_SCHEDULE``; function_app.py gives the timer trigger this value."""
    schedule = read_text(env, "EXPIRY_CHECK_SCHEDULE") or DEFAULT_EXPIRY_CHECK_SCHEDULE
    problem = ncrontab_problem(schedule)
    if problem:
        raise ConfigurationError("EXPIRY_CHECK_SCHEDULE", problem)
    return schedule


def load_local_settings(path: Path) -> dict[str, str]:
    """The ``Values`` of a ``local.settings.json`` (as ``func start`` reads it), or {}."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        raise ConfigurationError(str(path), "cannot be read as JSON") from None
    values = document.get("Values", {}) if isinstance(document, dict) else {}
    if not isinstance(values, dict):
        raise ConfigurationError(str(path), "Values is not an object")
    return {str(key): str(value) for key, value in values.items()}


def parse_trust_anchors(pem: str) -> tuple[x509.Certificate, ...]:
    """Parse ``TRUSTED_CA_CERTS``: one or more PEM CA certificates, and nothing secret."""
    name = "TRUSTED_CA_CERTS"
    refuse_key_vault_reference(name, pem)
    # Editors on Windows save a BOM; App Service passes it through.
    pem = pem.lstrip("\ufeff")
    # App settings pasted from a one-line JSON value sometimes keep literal "\n".
    if "\n" not in pem and "\\n" in pem:
        pem = pem.replace("\\n", "\n")
    if not pem.strip():
        raise ConfigurationError(name, "is required: PEM text of one or more trust anchors")
    if "PRIVATE KEY-----" in pem:
        # A key has no business in an app setting; refuse it before anything logs it.
        raise ConfigurationError(name, "holds a private key block; it must hold CA certificates only")
    try:
        anchors = x509.load_pem_x509_certificates(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, x509.InvalidVersion):
        raise ConfigurationError(name, "is not PEM certificate text") from None
    for index, cert in enumerate(anchors, start=1):
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        # Not ValueErrors: escaping here, they would stop the app's import and its indexing.
        except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
            raise ConfigurationError(name, f"certificate {index} has malformed extensions") from None
        if not is_ca:
            raise ConfigurationError(name, f"certificate {index} is not a CA")
    return tuple(anchors)


def _revocation_mode(env: Mapping[str, str]) -> RevocationMode:
    current, older = read_text(env, "REVOCATION_MODE"), read_text(env, "OCSP_MODE")
    modes = {
        name: _mode(name, value)
        for name, value in (("REVOCATION_MODE", current), ("OCSP_MODE", older))
        if value is not None
    }
    if len(set(modes.values())) > 1:
        raise ConfigurationError(
            "REVOCATION_MODE", "and OCSP_MODE (its older name) are both set and differ; keep one")
    return next(iter(modes.values()), RevocationMode.REQUIRE)


def _mode(name: str, value: str) -> RevocationMode:
    try:
        return RevocationMode(value.lower())
    except ValueError:
        raise ConfigurationError(name, "is not one of require, soft-fail, off") from None


def _sources(value: str | None) -> tuple[RevocationSource, ...]:
    if value is None:
        return (RevocationSource.OCSP, RevocationSource.CRL)
    names = [part.strip().lower() for part in value.split(",")]
    try:
        sources = tuple(RevocationSource(name) for name in names)
    except ValueError:
        raise ConfigurationError("REVOCATION_SOURCES", "must list ocsp and/or crl, comma-separated"
                                 ) from None
    if len(set(sources)) != len(sources):
        raise ConfigurationError("REVOCATION_SOURCES", "names a source twice")
    return sources


