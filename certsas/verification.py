"""Dates and chain: is the presented certificate current, and issued under a trust anchor?

Chain building and signature checks are ``cryptography.x509.verification``'s client
verifier (RFC 5280 path validation, webpki profile, clientAuth EKU required); the
only change to its defaults is that a client certificate may have no SAN, since
client certificates are named by their subject.

A successful verification is a :class:`VerifiedCertificate`; code that needs a
verified certificate asks for that type, and only :class:`ChainValidator` makes one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    ClientVerifier,
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from certsas.cache import ExpiringLru
from certsas.clientcert import PresentedCertificate
from certsas.clock import Clock, iso, system_clock
from certsas.errors import CertificateExpired, CertificateNotTrusted


@dataclass(frozen=True)
class VerifiedCertificate:
    """A presented certificate with the chain that proves it: leaf first, trust anchor last."""

    presented: PresentedCertificate
    chain: tuple[x509.Certificate, ...]

    @property
    def certificate(self) -> x509.Certificate:
        return self.presented.certificate

    @property
    def issuer(self) -> x509.Certificate:
        """The certificate that signed the leaf (what OCSP's CertID is built from)."""
        return self.chain[1]


def check_dates(certificate: x509.Certificate, now: datetime) -> None:
    """Refuse a certificate that is not yet valid or no longer valid at ``now``."""
    if now < certificate.not_valid_before_utc:
        raise CertificateExpired(f"not valid before {iso(certificate.not_valid_before_utc)}")
    if now > certificate.not_valid_after_utc:
        raise CertificateExpired(f"expired at {iso(certificate.not_valid_after_utc)}")


def client_extension_policies() -> tuple[ExtensionPolicy, ExtensionPolicy]:
    """(CA policy, end-entity policy): webpki defaults, the leaf's SAN optional, EKU required.

    RFC 5280 reads a missing EKU as "any purpose" and the verifier accepts it; a
    certificate that trades for storage access must say it is for client auth.
    """
    ee = (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
        .require_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _client_auth_eku)
    )
    return ExtensionPolicy.webpki_defaults_ca(), ee


def _client_auth_eku(policy: Policy, cert: x509.Certificate, eku: x509.ExtendedKeyUsage) -> None:
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise ValueError("the extended key usage does not include clientAuth")


class ChainValidator:
    """Validates client certificate chains to the configured trust anchors.

    A successful result is reused for the same certificate bytes for up to
    ``cache_seconds`` (and never past the first expiry in its chain); the leaf's own
    dates are checked by the caller on every request regardless.
    """

    def __init__(
        self,
        trust_anchors: tuple[x509.Certificate, ...],
        *,
        clock: Clock = system_clock,
        cache_seconds: int = 300,
        cache_size: int = 4096,
    ) -> None:
        if not trust_anchors:
            raise ValueError("at least one trust anchor is required")
        self._store = Store(list(trust_anchors))
        self._ca_policy, self._ee_policy = client_extension_policies()
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._cache: ExpiringLru[str, VerifiedCertificate] = ExpiringLru(cache_size)

    def verify(self, presented: PresentedCertificate) -> VerifiedCertificate:
        now = self._clock()
        cached = self._cache.get(presented.thumbprint, now)
        if cached is not None and cached.presented.der == presented.der:
            return VerifiedCertificate(presented, cached.chain)
        try:
            verified = self._verifier(now).verify(presented.certificate, [])
        except VerificationError as exc:
            raise CertificateNotTrusted(f"chain validation failed: {exc}") from None
        result = VerifiedCertificate(presented, tuple(verified.chain))
        if self._cache_seconds > 0:
            self._remember(result, now)
        return result

    def _verifier(self, now: datetime) -> ClientVerifier:
        # The builder is cheap; the validation time must be "now" for every check.
        return (
            PolicyBuilder()
            .store(self._store)
            .time(now)
            .extension_policies(ca_policy=self._ca_policy, ee_policy=self._ee_policy)
            .build_client_verifier()
        )

    def _remember(self, result: VerifiedCertificate, now: datetime) -> None:
        earliest_expiry = min(cert.not_valid_after_utc for cert in result.chain)
        until = min(now + timedelta(seconds=self._cache_seconds), earliest_expiry)
        self._cache.put(result.presented.thumbprint, result, until)
