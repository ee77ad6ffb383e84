"""Is a certificate fit to register? What ``certsas register`` refuses without ``--force``.

SPEC §6: a CA certificate, an expired one, and (when ``TRUSTED_CA_CERTS`` is set) one that
does not chain to it. A certificate not yet valid is accepted, so that a successor can be
registered before it starts (rotation).

Decided here, where SPEC is silent: a leaf whose extended key usage lacks ``clientAuth`` is
refused the same way (``--force`` overrides), whether or not ``TRUSTED_CA_CERTS`` is set,
because the app refuses it on every request (``certificate_not_trusted``): registering it
could only ever produce refusals.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from certsas.clientcert import PresentedCertificate
from certsas.clock import iso
from certsas.errors import CertificateNotTrusted
from certsas.verification import ChainValidator

CLIENT_AUTH_MISSING = "the extended key usage does not include clientAuth"


def is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def has_client_auth(certificate: x509.Certificate) -> bool:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.CLIENT_AUTH in usage


def objections(certificate: x509.Certificate, now: datetime,
               anchors: tuple[x509.Certificate, ...]) -> list[str]:
    """Why the app would never accept ``certificate`` (empty: fit to register)."""
    found: list[str] = []
    if now > certificate.not_valid_after_utc:
        found.append(f"it expired at {iso(certificate.not_valid_after_utc)}")
    if is_ca(certificate):
        # Nothing else about it matters: a CA is never a caller.
        return ["it is a CA certificate, not a client certificate", *found]
    if not has_client_auth(certificate):
        found.append(f"{CLIENT_AUTH_MISSING} (the app refuses it: certificate_not_trusted)")
    if anchors:
        problem = chain_problem(certificate, now, anchors)
        # The validator also requires clientAuth: say that once, not twice.
        if problem and not (CLIENT_AUTH_MISSING in problem and found):
            found.append(f"it does not chain to TRUSTED_CA_CERTS ({problem})")
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
        return exc.detail
    return None
