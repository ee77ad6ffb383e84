"""Dates and chain: is the presented certificate current, and issued under a trust anchor?

Chain building and signature checks are ``cryptography.x509.verification``'s client
verifier (RFC 5280 path validation, webpki profile, clientAuth EKU required); the
only change to its defaults is that a client certificate whose subject is not empty
may have no SAN, since client certificates are named by their subject. RFC 5280's
rule for the SAN itself still holds: with an empty subject the SAN is required and
critical; with a subject it is not critical. The leaf's key must be RSA of at least
2048 bits or an elliptic curve of at least 256 bits (or Ed25519/Ed448); DSA and
anything weaker or unknown is not trusted.

A successful verification is a :class:`VerifiedCertificate`; code that needs a
verified certificate asks for that type, and only :class:`ChainValidator` makes one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
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

MIN_RSA_BITS = 2048
MIN_EC_BITS = 256


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
    """(CA policy, end-entity policy): webpki defaults, EKU required, and the leaf's SAN
    optional only when its subject is not empty (:func:`_san_for_subject`).

    RFC 5280 reads a missing EKU as "any purpose" and the verifier accepts it; a
    certificate that trades for storage access must say it is for client auth.
    """
    ee = (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, _san_for_subject)
        .require_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _client_auth_eku)
    )
    return ExtensionPolicy.webpki_defaults_ca(), ee


def _san_for_subject(policy: Policy, cert: x509.Certificate,
                     san: x509.SubjectAlternativeName | None) -> None:
    """RFC 5280 §4.2.1.6, less only "a SAN is required": the rest keyed on the subject."""
    if len(cert.subject) == 0:
        if san is None:
            raise ValueError("the certificate has neither a subject nor a SAN")
        if not cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical:
            raise ValueError("the subject is empty and the SAN is not critical")
    elif san is not None and cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).critical:
        raise ValueError("the subject is not empty and the SAN is critical")


def check_key_strength(certificate: x509.Certificate) -> None:
    """Refuse a leaf key weaker than RSA 2048 / P-256, DSA, or a key type we do not know."""
    try:
        key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateNotTrusted("the certificate's public key is of an unsupported type"
                                    ) from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise CertificateNotTrusted(f"RSA key of {key.key_size} bits (at least "
                                        f"{MIN_RSA_BITS} required)")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.key_size < MIN_EC_BITS:
            raise CertificateNotTrusted(f"elliptic curve {key.curve.name} is weaker than P-256")
    elif not isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        raise CertificateNotTrusted(f"{type(key).__name__.removeprefix('_')} keys are not accepted")


def _client_auth_eku(policy: Policy, cert: x509.Certificate, eku: x509.ExtendedKeyUsage) -> None:
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise ValueError(CLIENT_AUTH_MISSING)


# --- why a chain failed, in the operator's words --------------------------------------
# The verifier says "candidates exhausted" whether the issuing CA is missing, another CA
# signed the leaf, or a CA of the same name with another key did. These run only once a
# verification has failed, and their text goes to the refusal's detail (the operator's
# log and `certsas register`), never to the caller, whose message stays generic.

CLIENT_AUTH_MISSING = "the extended key usage does not include clientAuth"
NO_EKU = "the certificate has no extended key usage extension (clientAuth is required)"


def eku_problem(certificate: x509.Certificate) -> str | None:
    """Why the leaf is not for client authentication, or None."""
    try:
        eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return NO_EKU
    if ExtendedKeyUsageOID.CLIENT_AUTH in eku:
        return None
    listed = ", ".join(getattr(oid, "_name", None) or oid.dotted_string for oid in eku)
    return f"{CLIENT_AUTH_MISSING} (it lists {listed or 'nothing'})"


def issuer_problem(certificate: x509.Certificate,
                   anchors: tuple[x509.Certificate, ...]) -> str | None:
    """Why no trust anchor is the leaf's issuer, or None when one signed it."""
    issuer = certificate.issuer.rfc4514_string()
    if certificate.issuer == certificate.subject:
        return f"it is self-signed ({issuer}), not issued by a CA in TRUSTED_CA_CERTS"
    named = [anchor for anchor in anchors if anchor.subject == certificate.issuer]
    if not named:
        held = "; ".join(anchor.subject.rfc4514_string() for anchor in anchors)
        return (f"its issuer {issuer} is not in TRUSTED_CA_CERTS (which holds {held}): it "
                f"comes from another CA, or {issuer} is an intermediate CA missing there "
                "(the front end forwards the leaf alone, so the issuing CA itself must be "
                "trusted)")
    for anchor in named:
        try:
            certificate.verify_directly_issued_by(anchor)
            return None
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
    return (f"its issuer is named {issuer}, but the CA of that name in TRUSTED_CA_CERTS did "
            "not sign it: another CA with the same name, or that CA has a new key (add its "
            "new certificate)")


def chain_failure_reason(certificate: x509.Certificate,
                         anchors: tuple[x509.Certificate, ...], raw: str) -> str:
    """The verifier's failure ``raw`` as an operator would say it."""
    try:
        reasons = [r for r in (eku_problem(certificate), issuer_problem(certificate, anchors))
                   if r]
    except Exception:  # a field that does not parse: the verifier's own words stand
        reasons = []
    if reasons:
        return "; ".join(reasons)
    # Something further up the chain (an expired CA, a CA without keyCertSign): the
    # verifier's own words, less its prefix and its dump of the certificate.
    text = raw.removeprefix("validation failed: ")
    return text.split(" (encountered processing <Certificate", 1)[0]


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
        self._anchors = trust_anchors
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
        check_key_strength(presented.certificate)
        try:
            verified = self._verifier(now).verify(presented.certificate, [])
        except VerificationError as exc:
            reason = chain_failure_reason(presented.certificate, self._anchors, str(exc))
            raise CertificateNotTrusted(f"chain validation failed: {reason}") from None
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            # The verifier raises these for fields it cannot read (a 9-byte iPAddress
            # SAN): a certificate we cannot read is not trusted. The type, not the text.
            raise CertificateNotTrusted(
                f"chain validation failed: unreadable certificate ({type(exc).__name__})"
            ) from None
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
