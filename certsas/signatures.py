"""Which signature algorithms certsas believes on revocation data (OCSP responses, CRLs).

SHA-1 and MD5 signatures are refused: a forged "good" answer or a forged, empty list is
exactly what a collision buys. One table, so OCSP and CRLs can never drift apart.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import SignatureAlgorithmOID

_ACCEPTED: dict[type, frozenset[x509.ObjectIdentifier]] = {
    rsa.RSAPublicKey: frozenset({
        SignatureAlgorithmOID.RSA_WITH_SHA256, SignatureAlgorithmOID.RSA_WITH_SHA384,
        SignatureAlgorithmOID.RSA_WITH_SHA512,
    }),
    ec.EllipticCurvePublicKey: frozenset({
        SignatureAlgorithmOID.ECDSA_WITH_SHA256, SignatureAlgorithmOID.ECDSA_WITH_SHA384,
        SignatureAlgorithmOID.ECDSA_WITH_SHA512,
    }),
    ed25519.Ed25519PublicKey: frozenset({SignatureAlgorithmOID.ED25519}),
}


def is_accepted(key: CertificatePublicKeyTypes, algorithm: x509.ObjectIdentifier) -> bool:
    """Is ``algorithm`` a signature certsas believes when made with a key like ``key``?"""
    return any(isinstance(key, kind) and algorithm in oids for kind, oids in _ACCEPTED.items())


def algorithm_name(algorithm: x509.ObjectIdentifier) -> str:
    """A readable name for the log, or the dotted OID when cryptography knows none."""
    return str(getattr(algorithm, "_name", algorithm.dotted_string))
