"""The body of ``POST /api/rotate`` and the successor's proof (SPEC §4a).

The body is ``{"certificate": "<PEM of the successor>", "signature": "<base64>"}``; the
signature is the successor key's over :func:`proof_message`: RSA PKCS#1 v1.5 with SHA-256,
ECDSA with SHA-256 (DER, as OpenSSL and ``cryptography`` make it) or Ed25519 (and Ed448,
the other key the chain check accepts).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from certsas.clientcert import MAX_HEADER_BYTES, PresentedCertificate
from certsas.errors import ClientCertificateMalformed, InvalidRequest, SuccessorInvalid

MAX_BODY_BYTES = 32 * 1024
MAX_SIGNATURE_BYTES = 2048  # RSA-16384's signature; anything longer is not a signature
FIELDS = frozenset({"certificate", "signature"})


def proof_message(current: str, successor: str) -> bytes:
    """What the successor's key signs: both SHA-256 thumbprints, uppercase hex."""
    return f"certsas-rotate:{current}:{successor}".encode("ascii")


@dataclass(frozen=True)
class RotateRequest:
    certificate_pem: str
    signature: bytes = b""


def parse_rotate_request(body: bytes) -> RotateRequest:
    """``{"certificate": PEM, "signature": base64}`` and nothing else; else ``invalid_request``."""
    if len(body) > MAX_BODY_BYTES:
        raise InvalidRequest(f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidRequest("body is not valid JSON") from None
    if not isinstance(data, dict) or set(data) != FIELDS:
        raise InvalidRequest("body is not the rotation object",
                             message='The body must be {"certificate": "<PEM>", '
                                     '"signature": "<base64>"}.')
    certificate, signature = data["certificate"], data["signature"]
    if not isinstance(certificate, str) or not isinstance(signature, str):
        raise InvalidRequest("certificate or signature is not a string",
                             message="certificate and signature must be strings.")
    try:
        raw = base64.b64decode(signature, validate=True)
    except (ValueError, binascii.Error):
        raw = b""
    if not raw or len(raw) > MAX_SIGNATURE_BYTES:
        raise InvalidRequest("signature is not base64 of a signature",
                             message="signature must be the base64 of a signature.")
    return RotateRequest(certificate, raw)


# The largest DER whose base64 fits the 16 KiB certificate header (SPEC §2).
MAX_SUCCESSOR_DER_BYTES = MAX_HEADER_BYTES // 4 * 3
# What cryptography raises for bytes it cannot read as a certificate, beyond ValueError.
_PARSE_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion,
                 x509.DuplicateExtension, x509.UnsupportedGeneralNameType)


def read_successor(pem: str) -> PresentedCertificate:
    """Check 1, parse: one PEM certificate whose every field certsas reads can be read."""
    unreadable = SuccessorInvalid("successor does not parse",
                                  message="The successor certificate is not one PEM X.509 "
                                          "certificate.")
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode("ascii"))
        if len(certificates) != 1:
            raise unreadable
        der = certificates[0].public_bytes(serialization.Encoding.DER)
    except _PARSE_ERRORS:
        raise unreadable from None
    if len(der) > MAX_SUCCESSOR_DER_BYTES:
        # It could never be presented: App Service forwards base64 DER, and a header over
        # 16 KiB is malformed (SPEC §2); nor would it fit a Table property once registered.
        raise SuccessorInvalid(
            f"successor of {len(der)} bytes, over {MAX_SUCCESSOR_DER_BYTES}",
            message=f"The successor certificate is larger than {MAX_SUCCESSOR_DER_BYTES} bytes "
                    "(DER): it could not be forwarded in a request header.")
    try:
        return PresentedCertificate.from_der(der)
    except (*_PARSE_ERRORS, ClientCertificateMalformed):
        raise unreadable from None


def proof_verifies(certificate: x509.Certificate, signature: bytes, message: bytes) -> bool:
    """RSA PKCS#1 v1.5 with SHA-256, ECDSA with SHA-256 (DER, as OpenSSL makes it), Ed25519
    (and Ed448, the other key the chain check accepts)."""
    key = certificate.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, message)
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True
