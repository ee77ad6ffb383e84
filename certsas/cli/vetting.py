"""Is a certificate fit to register? What ``certsas register`` refuses without ``--force``.

SPEC §6: a CA certificate, an expired one, and (when ``TRUSTED_CA_CERTS`` is set) one that
does not chain to it. A certificate not yet valid is accepted, so that a successor can be
registered before it starts (rotation).

Decided here, where SPEC is silent: a leaf whose extended key usage lacks ``clientAuth`` (or
that has none) is refused the same way (``--force`` overrides), whether or not ``TRUSTED_CA_CERTS`` is set,
because the app refuses it on every request (``certificate_not_trusted``): registering it
could only ever produce refusals.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certsas.clientcert import PresentedCertificate
from certsas.clock import iso
from certsas.errors import CertificateNotTrusted
from certsas.verification import ChainValidator, eku_problem


def is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def objections(certificate: x509.Certificate, now: datetime,
               anchors: tuple[x509.Certificate, ...]) -> list[str]:
    """Why the app would never accept ``certificate`` (empty: fit to register), each in
    the operator's words: the validator's own reasons (:mod:`certsas.verification`)."""
    found: list[str] = []
    if now > certificate.not_valid_after_utc:
        found.append(f"it expired at {iso(certificate.not_valid_after_utc)}")
    if is_ca(certificate):
        # Nothing else about it matters: a CA is never a caller.
        return ["it is a CA certificate, not a client certificate", *found]
    usage = eku_problem(certificate)
    if usage:
        found.append(f"{usage} (the app refuses it: certificate_not_trusted)")
    if anchors:
        problem = chain_problem(certificate, now, anchors)
        # The validator names the EKU too: say it once, not twice.
        rest = [part for part in (problem or "").split("; ") if part and part != usage]
        if rest:
            found.append(f"it does not chain to TRUSTED_CA_CERTS: {'; '.join(rest)}")
    return found


def chain_problem(certificate: x509.Certificate, now: datetime,
                  anchors: tuple[x509.Certificate, ...]) -> str | None:
    """The chain judged at a moment the leaf is valid: now, or its start for a successor
    (its own dates are judged above, not twice)."""
    at = min(max(now, certificate.not_valid_before_utc), certificate.not_valid_after_utc)
    validator = ChainValidator(anchors, clock=lambda: at, cache_seconds=0)
    presented = PresentedCertificate.from_der(certificate.public_bytes(serialization.Encoding.DER))
    try:
        validator.verify(presented)
    except CertificateNotTrusted as exc:
        return exc.detail.removeprefix("chain validation failed: ")
    return None
