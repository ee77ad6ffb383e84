"""Making the proof of ``POST /api/rotate`` (SPEC §4a) as a client would, for the tests."""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from certsas.devtools.pki import Issued, LeafKey
from certsas.successor import proof_message
from certsas.thumbprints import sha256_thumbprint


def sign(key: LeafKey, message: bytes) -> bytes:
    """RSA PKCS#1 v1.5 / ECDSA with SHA-256, or Ed25519: what §4a accepts."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(message, ec.ECDSA(hashes.SHA256()))
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key.sign(message)


def proof(current: Issued, successor: Issued, *, key: LeafKey | None = None) -> str:
    """The base64 signature over ``certsas-rotate:<current>:<successor>``, by ``key`` (the
    successor's own unless a test says otherwise)."""
    message = proof_message(sha256_thumbprint(current.der), sha256_thumbprint(successor.der))
    return base64.b64encode(sign(key or successor.key, message)).decode("ascii")


def rotate_body(current: Issued, successor: Issued, *, key: LeafKey | None = None) -> bytes:
    return json.dumps({"certificate": successor.pem.decode("ascii"),
                       "signature": proof(current, successor, key=key)}).encode()
