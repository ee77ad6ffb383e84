"""Making the proof of ``POST /api/rotate`` (SPEC §4a) as a client would, for the tests."""

from __future__ import annotations

import base64
import json

from certsas.devtools.pki import Issued, LeafKey
from certsas.successor import proof_message
from certsas.thumbprints import sha256_thumbprint
from tests.support.ocsp_faults import sign_sha256


def proof(current: Issued, successor: Issued, *, key: LeafKey | None = None) -> str:
    """The base64 signature over ``certsas-rotate:<current>:<successor>``, by ``key`` (the
    successor's own unless a test says otherwise)."""
    message = proof_message(sha256_thumbprint(current.der), sha256_thumbprint(successor.der))
    return base64.b64encode(sign_sha256(key or successor.key, message)).decode("ascii")


def rotate_body(current: Issued, successor: Issued, *, key: LeafKey | None = None) -> bytes:
    return json.dumps({"certificate": successor.pem.decode("ascii"),
                       "signature": proof(current, successor, key=key)}).encode()
