"""A registration: a pre-shared client certificate and what it may be granted (SPEC §4).

One Table entity per certificate: PartitionKey is the SHA-256 thumbprint (uppercase hex)
and RowKey the constant ``"certificate"``, so a lookup is one point read
(:mod:`certsas.registry`).

What a registration allows is a list of grants (:mod:`certsas.grants`), stored as one
JSON property, ``Grants``. Entities written now keep the four columns of earlier
versions too (``Container``, ``BlobPrefix``, ``Permissions``, ``MaxTtlMinutes``), holding
the first grant, so a version before grants (a rollback, or an instance not yet
upgraded) still reads them, and grants no more than that one grant.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from certsas.errors import CertificateNotRegistered
from certsas.grants import AccessGrant, checked_grants, grants_json, stored_grants
from certsas.thumbprints import sha1_thumbprint, sha256_thumbprint

ROW_KEY = "certificate"


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
        grants = grants_json(self.grants)
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
            grants=stored_grants(entity),
            enabled=entity["Enabled"] is True,
            description=str(entity.get("Description") or ""),
            allow_rotation=entity.get("AllowRotation") is True,
            rotated_from=str(entity.get("RotatedFrom") or ""),
        )


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


def _utc(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    # The Tables SDK returns a tz-aware datetime subclass; normalise to plain UTC.
    return datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                    tzinfo=UTC)
