"""The registry of pre-shared client certificates, in Azure Table Storage (SPEC §4).

One entity per certificate: PartitionKey is the SHA-256 thumbprint (uppercase hex)
and RowKey the constant ``"certificate"``, so a lookup is one point read.

What a registration allows is a list of grants (:class:`AccessGrant`), stored as one
JSON property, ``Grants``. An entity written by an earlier version has no ``Grants``
but four columns (``Container``, ``BlobPrefix``, ``Permissions``, ``MaxTtlMinutes``)
and is read as one grant. Entities written now keep those four columns too, holding
the first grant, so a version before grants (a rollback, or an instance not yet
upgraded) still reads them, and grants no more than that one grant.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from typing import Any, Protocol

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from certsas.cache import ExpiringLru
from certsas.clock import Clock, system_clock
from certsas.errors import CertificateNotRegistered, DependencyUnavailable
from certsas.permissions import normalize_permissions
from certsas.tables import EntityReader
from certsas.thumbprints import sha1_thumbprint, sha256_thumbprint

ROW_KEY = "certificate"
MAX_PREFIX = 1024
MAX_GRANTS = 64
# A Table string property holds 64 KiB of UTF-16: 32,768 characters.
MAX_GRANTS_JSON = 32 * 1024


def prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot be a registration's blob prefix, or None if it can.

    A prefix is a folder: it ends with ``/``, so ``tenant-a/`` never covers the sibling
    ``tenant-ab/x`` as the bare string ``tenant-a`` would. It must also be a name a
    blob could start with (the request rules of SPEC §1), or it would match nothing.
    """
    if not prefix:
        return None
    if len(prefix) > MAX_PREFIX:
        return f"is longer than {MAX_PREFIX} characters"
    if not prefix.endswith("/"):
        shown = prefix[:40]
        return (f"must end with '/' (a folder: {shown!r} would also cover "
                f"{shown + 'b/...'!r}); use {shown + '/'!r}")
    if prefix.startswith("/") or any(ord(ch) < 0x20 or ch in "\\\x7f" for ch in prefix):
        return "may not start with '/' or hold control characters or a backslash"
    if any(segment in (".", "..") for segment in prefix.split("/")):
        return "may not contain '.' or '..' segments"
    return None


@dataclass(frozen=True)
class AccessGrant:
    """One place a registration may reach: a container, optionally only the blobs under a
    folder (``prefix``, ending in ``/``), with these letters for at most this long."""

    container: str
    prefix: str
    permissions: str
    max_ttl_minutes: int

    @property
    def key(self) -> tuple[str, str]:
        """What tells grants apart: one grant per container and prefix."""
        return self.container, self.prefix

    @classmethod
    def of(cls, container: str, *, prefix: str = "", permissions: str = "rl",
           max_ttl_minutes: int = 60) -> AccessGrant:
        """A checked grant; ``ValueError`` for a prefix, letters or lifetime it cannot have."""
        problem = prefix_problem(prefix)
        if problem:
            raise ValueError(f"prefix {problem}")
        if not container:
            raise ValueError("a grant names a container")
        if isinstance(max_ttl_minutes, bool) or not isinstance(max_ttl_minutes, int) \
                or max_ttl_minutes < 1:
            raise ValueError("max_ttl_minutes must be a positive integer")
        return cls(container, prefix, normalize_permissions(permissions), max_ttl_minutes)

    def to_json(self) -> dict[str, Any]:
        return {"container": self.container, "prefix": self.prefix,
                "permissions": self.permissions, "max_ttl_minutes": self.max_ttl_minutes}

    @classmethod
    def from_json(cls, data: Any) -> AccessGrant:
        if not isinstance(data, dict):
            raise TypeError("a grant is a JSON object")
        return cls.of(str(data["container"]), prefix=_folder(str(data.get("prefix") or "")),
                      permissions=str(data["permissions"]),
                      max_ttl_minutes=data["max_ttl_minutes"])

    def describe(self) -> str:
        """``container/prefix`` (or the container alone), as the CLI and logs name a grant."""
        return f"{self.container}/{self.prefix}" if self.prefix else self.container


def checked_grants(grants: Iterable[AccessGrant]) -> tuple[AccessGrant, ...]:
    """``grants`` as a registration holds them: at least one, at most ``MAX_GRANTS``, one per
    container and prefix; ``ValueError`` otherwise."""
    result = tuple(grants)
    if not result:
        raise ValueError("a registration holds at least one grant")
    if len(result) > MAX_GRANTS:
        raise ValueError(f"a registration holds at most {MAX_GRANTS} grants")
    if len({grant.key for grant in result}) != len(result):
        raise ValueError("two grants for the same container and prefix")
    return result


@dataclass(frozen=True)
class Registration:
    """A pre-shared certificate and what it may be granted."""

    thumbprint: str
    certificate_pem: str
    subject: str
    subject_cn: str
    issuer: str
    serial: str
    not_before: datetime
    not_after: datetime
    thumbprint_sha1: str
    grants: tuple[AccessGrant, ...]
    enabled: bool = True
    description: str = ""
    allow_rotation: bool = False
    rotated_from: str = ""  # SHA-256 of the registration this one succeeded (SPEC §4a)

    @classmethod
    def for_certificate(
        cls,
        certificate: x509.Certificate,
        *,
        container: str,
        permissions: str = "rl",
        prefix: str = "",
        max_ttl_minutes: int = 60,
        description: str = "",
        allow_rotation: bool = False,
    ) -> Registration:
        """A registration of one grant, as ``certsas register`` writes it."""
        grant = AccessGrant.of(container, prefix=prefix, permissions=permissions,
                               max_ttl_minutes=max_ttl_minutes)
        return cls.with_grants(certificate, (grant,), description=description,
                               allow_rotation=allow_rotation)

    @classmethod
    def with_grants(cls, certificate: x509.Certificate, grants: Iterable[AccessGrant], *,
                    description: str = "", allow_rotation: bool = False,
                    rotated_from: str = "") -> Registration:
        der = certificate.public_bytes(serialization.Encoding.DER)
        return cls(
            thumbprint=sha256_thumbprint(der),
            certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            subject=certificate.subject.rfc4514_string(),
            subject_cn=common_name(certificate.subject),
            issuer=certificate.issuer.rfc4514_string(),
            serial=f"{certificate.serial_number:X}",
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            thumbprint_sha1=sha1_thumbprint(der),
            grants=checked_grants(grants),
            description=description,
            allow_rotation=allow_rotation,
            rotated_from=rotated_from,
        )

    @cached_property
    def der(self) -> bytes:
        return x509.load_pem_x509_certificate(self.certificate_pem.encode("ascii")).public_bytes(
            serialization.Encoding.DER
        )

    @property
    def containers(self) -> frozenset[str]:
        return frozenset(grant.container for grant in self.grants)

    def to_entity(self) -> dict[str, Any]:
        """The entity in the current form; ``ValueError`` if the grants do not fit in it."""
        grants = json.dumps([grant.to_json() for grant in checked_grants(self.grants)],
                            separators=(",", ":"))
        if len(grants) > MAX_GRANTS_JSON:
            raise ValueError(f"the grants take {len(grants)} characters, more than a Table "
                             f"property holds ({MAX_GRANTS_JSON})")
        first = self.grants[0]
        return {
            "PartitionKey": self.thumbprint,
            "RowKey": ROW_KEY,
            "CertificatePem": self.certificate_pem,
            "Subject": self.subject,
            "SubjectCN": self.subject_cn,
            "Issuer": self.issuer,
            "SerialNumber": self.serial,
            "NotBefore": self.not_before,
            "NotAfter": self.not_after,
            "ThumbprintSha1": self.thumbprint_sha1,
            "Grants": grants,
            # The first grant again, in the columns of earlier versions (module docstring).
            "Container": first.container,
            "BlobPrefix": first.prefix,
            "Permissions": first.permissions,
            "MaxTtlMinutes": first.max_ttl_minutes,
            "Enabled": self.enabled,
            "Description": self.description,
            "AllowRotation": self.allow_rotation,
            "RotatedFrom": self.rotated_from,
        }

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> Registration:
        """Raises ``KeyError``/``ValueError``/``TypeError`` on a malformed entity."""
        return cls(
            thumbprint=str(entity["PartitionKey"]),
            certificate_pem=str(entity["CertificatePem"]),
            subject=str(entity["Subject"]),
            subject_cn=str(entity["SubjectCN"]),
            issuer=str(entity["Issuer"]),
            serial=str(entity["SerialNumber"]),
            not_before=_utc(entity["NotBefore"]),
            not_after=_utc(entity["NotAfter"]),
            thumbprint_sha1=str(entity.get("ThumbprintSha1", "")),
            grants=_stored_grants(entity),
            enabled=entity["Enabled"] is True,
            description=str(entity.get("Description") or ""),
            allow_rotation=entity.get("AllowRotation") is True,
            rotated_from=str(entity.get("RotatedFrom") or ""),
        )


def _stored_grants(entity: dict[str, Any]) -> tuple[AccessGrant, ...]:
    """``Grants`` when the entity has it; otherwise (an earlier version's) its one grant."""
    stored = entity.get("Grants")
    if stored is None:
        return (AccessGrant.of(str(entity["Container"]),
                               prefix=_folder(str(entity.get("BlobPrefix") or "")),
                               permissions=str(entity["Permissions"]),
                               max_ttl_minutes=int(entity["MaxTtlMinutes"])),)
    return _parsed_grants(str(stored))


@lru_cache(maxsize=4096)
def _parsed_grants(text: str) -> tuple[AccessGrant, ...]:
    """Parsed and checked once per distinct text: with ``REGISTRY_CACHE_SECONDS=0`` every
    request reads the entity again, and 20 grants cost ~0.07 ms to check each time.
    Errors are not cached (``lru_cache`` keeps only results)."""
    try:
        listed = json.loads(text)
    except RecursionError:
        raise ValueError("Grants is nested too deeply") from None
    if not isinstance(listed, list):
        raise TypeError("Grants is not a JSON array")
    return checked_grants(AccessGrant.from_json(item) for item in listed)


@dataclass(frozen=True)
class Unreadable:
    """A registry entity that does not parse: its key and why (an exception type only)."""

    thumbprint: str
    reason: str


def common_name(subject: x509.Name) -> str:
    values = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


def match_registration(registration: Registration | None, certificate: x509.Certificate,
                       der: bytes) -> Registration:
    """The registration, if it matches the presented certificate in every respect.

    ``certificate`` is ``der`` parsed (the broker's PresentedCertificate); once the bytes
    are equal its fields are the stored certificate's, so they are read from there.
    """
    if registration is None:
        raise CertificateNotRegistered("no registration for this thumbprint")
    # A disabled registration is an operator's "no", whatever else matches.
    if not registration.enabled:
        raise CertificateNotRegistered("registration is disabled")
    # Exact bytes: the thumbprint key already implies it, but the stored PEM is the truth.
    if not hmac.compare_digest(registration.der, der):
        raise CertificateNotRegistered("stored certificate differs from the presented one")
    # The bytes are equal, so the presented certificate's issuer, CN and validity are
    # those of the stored one; what remains is whether the entity's own fields agree
    # with its certificate, worked out once per cached registration, not per request.
    mismatch = _field_mismatch(registration)
    if mismatch is not None:
        raise CertificateNotRegistered(mismatch)
    return registration


@lru_cache(maxsize=4096)
def _field_mismatch(registration: Registration) -> str | None:
    """Why the entity's issuer, subject CN or validity differ from its certificate, if they do."""
    certificate = x509.load_der_x509_certificate(registration.der)
    # Issuer: the same subject from another CA never matches.
    if registration.issuer != certificate.issuer.rfc4514_string():
        return "issuer differs from the registered one"
    # Subject CN, as the pre-shared record names it.
    if registration.subject_cn != common_name(certificate.subject):
        return "subject CN differs from the registered one"
    # Validity: a re-issued certificate with new dates must be registered again.
    if (registration.not_before, registration.not_after) != (
        certificate.not_valid_before_utc,
        certificate.not_valid_after_utc,
    ):
        return "validity period differs from the registered one"
    return None


class Registry(Protocol):
    """Looks up a registration by SHA-256 thumbprint."""

    def get(self, thumbprint: str) -> Registration | None: ...


class TableRegistryReader:
    """What the app does with the registry table: one point read per lookup."""

    def __init__(self, table: EntityReader) -> None:
        self._reader = table

    def get(self, thumbprint: str) -> Registration | None:
        try:
            entity = self._reader.get_entity(partition_key=thumbprint, row_key=ROW_KEY)
        except ResourceNotFoundError as exc:
            if getattr(exc, "error_code", None) == "TableNotFound":
                raise DependencyUnavailable("registry table does not exist") from None
            return None
        except AzureError as exc:
            raise DependencyUnavailable(f"registry read failed: {type(exc).__name__}") from None
        try:
            return Registration.from_entity(dict(entity))
        except (KeyError, ValueError, TypeError) as exc:
            raise CertificateNotRegistered(f"registration entity is malformed: {exc!r}") from None


class TableRegistry(TableRegistryReader):
    """The registry in one Azure Table (the SDK's client): read by the app, written by the CLI."""

    def __init__(self, table: TableClient) -> None:
        super().__init__(table)
        self._table = table

    def add(self, registration: Registration) -> None:
        """Insert; raises ``ResourceExistsError`` if the thumbprint is registered."""
        self._table.create_entity(registration.to_entity())

    def put(self, registration: Registration) -> None:
        self._table.upsert_entity(registration.to_entity(), mode=UpdateMode.REPLACE)

    def find(self, thumbprint: str) -> Registration | None:
        """By SHA-256 (a point read) or by SHA-1, the portal's thumbprint (a query)."""
        if len(thumbprint) == 64:
            return self.get(thumbprint)
        query = "RowKey eq @row and ThumbprintSha1 eq @sha1"
        for entity in self._table.query_entities(
                query, parameters={"row": ROW_KEY, "sha1": thumbprint}):
            return Registration.from_entity(dict(entity))
        return None

    def scan(self) -> Iterator[Registration | Unreadable]:
        """Every registration; an entity that does not parse is an :class:`Unreadable`
        rather than the end of the scan (the expiry check and ``list`` read on past it).
        Storage errors (``AzureError``) are the caller's to handle."""
        for entity in self._table.query_entities("RowKey eq @row", parameters={"row": ROW_KEY}):
            try:
                yield Registration.from_entity(dict(entity))
            except (KeyError, ValueError, TypeError) as exc:
                yield Unreadable(str(entity.get("PartitionKey", "")), type(exc).__name__)

    def set_enabled(self, thumbprint: str, enabled: bool) -> Registration:
        current = self.find(thumbprint)
        if current is None:
            raise KeyError(thumbprint)
        updated = replace(current, enabled=enabled)
        self.put(updated)
        return updated

    def remove(self, thumbprint: str) -> Registration:
        current = self.find(thumbprint)
        if current is None:
            raise KeyError(thumbprint)
        self._table.delete_entity(partition_key=current.thumbprint, row_key=ROW_KEY)
        return current


class CachedRegistry:
    """Reuses reads, hits and misses alike, for ``seconds``; bounded and thread-safe.

    A disabled or removed registration therefore takes effect within ``seconds``
    (``REGISTRY_CACHE_SECONDS``); failures are never cached.
    """

    def __init__(self, inner: Registry, seconds: int, *, clock: Clock = system_clock,
                 max_entries: int = 4096) -> None:
        self._inner = inner
        self._ttl = timedelta(seconds=seconds)
        self._clock = clock
        # A 1-tuple, so that a cached miss (None) differs from nothing cached.
        self._cache: ExpiringLru[str, tuple[Registration | None]] = ExpiringLru(max_entries)

    def get(self, thumbprint: str) -> Registration | None:
        if self._ttl <= timedelta(0):
            return self._inner.get(thumbprint)
        now = self._clock()
        cached = self._cache.get(thumbprint, now)
        if cached is not None:
            return cached[0]
        registration = self._inner.get(thumbprint)
        self._cache.put(thumbprint, (registration,), now + self._ttl)
        return registration


def _folder(prefix: str) -> str:
    """A prefix stored by an earlier version without its trailing ``/`` is read as the
    folder it names: narrower than the bare string, never wider (fails closed)."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def _utc(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    # The Tables SDK returns a tz-aware datetime subclass; normalise to plain UTC.
    return datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                    tzinfo=UTC)
