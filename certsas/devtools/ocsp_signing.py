"""The answers certsas's OCSP responder signs: a plan, the signing, and the fault hooks.

:class:`ResponsePlan` is everything that goes into one answer; :func:`sign` turns it
into DER with ``cryptography``'s ``OCSPResponseBuilder``. A :class:`Fault` lets the
tests change the plan before signing or the reply after it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509 import ocsp

SignerKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class ResponsePlan:
    """Everything that goes into one signed answer; a :class:`Fault` may replace any of it."""

    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial_number: int
    hash_algorithm: hashes.HashAlgorithm
    status: ocsp.OCSPCertStatus
    this_update: datetime
    next_update: datetime | None
    revocation_time: datetime | None
    nonce: bytes | None
    signer: x509.Certificate
    signer_key: SignerKey
    certificates: tuple[x509.Certificate, ...]  # carried in the response (a delegated signer)
    responder_encoding: ocsp.OCSPResponderEncoding = ocsp.OCSPResponderEncoding.HASH
    extensions: tuple[tuple[x509.ExtensionType, bool], ...] = ()  # (extension, critical)

    def replace(self, **changes: object) -> ResponsePlan:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Reply:
    """What goes back over HTTP."""

    body: bytes
    status: int = 200
    content_type: str = "application/ocsp-response"
    delay_seconds: float = 0.0  # wait this long first (a hang, for timeout tests)


class Fault:
    """No fault: subclasses override one or both hooks to misbehave on purpose."""

    def plan(self, plan: ResponsePlan) -> ResponsePlan:
        return plan

    def reply(self, reply: Reply, plan: ResponsePlan | None) -> Reply:
        return reply


def sign(plan: ResponsePlan) -> bytes:
    """The DER OCSPResponse that ``plan`` describes."""
    builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
        plan.issuer_name_hash, plan.issuer_key_hash, plan.serial_number, plan.hash_algorithm,
        plan.status, plan.this_update, plan.next_update, plan.revocation_time,
        x509.ReasonFlags.key_compromise if plan.revocation_time else None,
    ).responder_id(plan.responder_encoding, plan.signer)
    if plan.certificates:
        builder = builder.certificates(plan.certificates)
    if plan.nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(plan.nonce), critical=False)
    for extension, critical in plan.extensions:
        builder = builder.add_extension(extension, critical=critical)
    digest = None if isinstance(plan.signer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(plan.signer_key, digest).public_bytes(serialization.Encoding.DER)


def unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    """An unsigned error answer: malformedRequest, tryLater, unauthorized..."""
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


def issuer_hashes(
    issuer: x509.Certificate, algorithm: hashes.HashAlgorithm
) -> tuple[bytes, bytes]:
    """CertID's issuerNameHash and issuerKeyHash for ``issuer`` with ``algorithm``."""
    return _digest(algorithm, issuer.subject.public_bytes()), _digest(
        algorithm, _subject_public_key(issuer)
    )


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()


def _subject_public_key(certificate: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's bits: the encoding each key type defines for SPKI."""
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(serialization.Encoding.X962,
                                serialization.PublicFormat.UncompressedPoint)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    raise ValueError(f"unsupported CA key type {type(key).__name__}")
