"""Registering the successor certificate oneself (SPEC §4a): the proof, and the call."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from certsas.client.errors import IdentityError, Unreachable
from certsas.client.identity import Identity, Password, load_identity
from certsas.client.service import Service


@dataclass(frozen=True)
class Rotated:
    """certsas's ``201`` answer: the new registration."""

    thumbprint: str
    not_after: str
    rotated_from: str


def proof_text(current: Identity, successor: Identity) -> bytes:
    """What the successor's key signs: both thumbprints, uppercase hex, in ASCII."""
    return f"certsas-rotate:{current.thumbprint}:{successor.thumbprint}".encode("ascii")


def sign_proof(current: Identity, successor: Identity) -> bytes:
    """The signature with the successor's key: RSA PKCS#1 v1.5, ECDSA or Ed25519, SHA-256."""
    text, key = proof_text(current, successor), successor.key
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(text, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(text, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(text)
    raise IdentityError(f"a {type(key).__name__.removeprefix('_')} key cannot sign a rotation "
                        f"proof: certsas accepts RSA, ECDSA and Ed25519 keys")


def rotation_body(current: Identity, successor: Identity) -> dict[str, str]:
    if successor.thumbprint == current.thumbprint:
        raise IdentityError("the new certificate is the current one")
    return {"certificate": successor.pem().decode("ascii"),
            "signature": base64.b64encode(sign_proof(current, successor)).decode("ascii")}


def rotate(url: str, *, cert: str | Path, new_cert: str | Path, key: str | Path | None = None,
           new_key: str | Path | None = None, ca: str | Path | None = None,
           timeout: float = 15.0, password: Password = None,
           new_password: Password = None) -> Rotated:
    """POST the successor to certsas's rotate endpoint ``url`` over mutual TLS with the
    current certificate. :class:`Refused` carries certsas's reason."""
    current = load_identity(cert, key, password)
    successor = load_identity(new_cert, new_key, new_password)
    body = rotation_body(current, successor)
    service = Service(current, ca, timeout)
    try:
        answer = service.post(url, body, expect=201)
    finally:
        service.close()
    try:
        return Rotated(str(answer["thumbprint"]), str(answer["not_after"]),
                       str(answer["rotated_from"]))
    except KeyError:
        raise Unreachable("certsas answered 201 without the documented fields") from None
