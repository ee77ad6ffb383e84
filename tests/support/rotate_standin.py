"""A loopback stand-in for ``POST /api/rotate`` (SPEC §4a), for the client's tests until the
service's own endpoint is merged: TLS that requires a client certificate from the dev CAs,
and the proof checked with cryptography, independently of certsas.client's code.

Answers ``201 {"thumbprint", "not_after", "rotated_from"}`` for a valid proof, ``403
successor_invalid`` for a signature that does not verify, ``403 rotation_not_allowed`` for a
caller in ``not_allowed``, ``400 invalid_request`` for any other body. ``received`` keeps the
bodies it accepted.
"""

from __future__ import annotations

import base64
import binascii
import json
import ssl
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from tests.support.loopback import LoopbackServer, QuietHandler


def sha256_hex(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex().upper()


def verify_proof(current: x509.Certificate, successor: x509.Certificate, signature: bytes
                 ) -> bool:
    text = f"certsas-rotate:{sha256_hex(current)}:{sha256_hex(successor)}".encode("ascii")
    key = successor.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, text, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, text, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, text)
        else:
            return False
    except InvalidSignature:
        return False
    return True


class RotateStandIn(LoopbackServer):
    """``with RotateStandIn(server_pem, server_key, trusted_ca) as stand_in:`` then POST to
    ``stand_in.url``."""

    def __init__(self, server_cert: Path, server_key: Path, trusted: Path) -> None:
        self.not_allowed: set[str] = set()
        self.received: list[dict[str, Any]] = []
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(server_cert, server_key)
        tls.load_verify_locations(trusted)
        tls.verify_mode = ssl.CERT_REQUIRED  # as App Service's front end: a certificate or nothing
        super().__init__(self._handler(), tls=tls)

    @property
    def url(self) -> str:
        return self.origin.replace("127.0.0.1", "localhost") + "/api/rotate"

    def answer(self, caller: x509.Certificate, body: bytes) -> tuple[int, dict[str, str]]:
        current = sha256_hex(caller)
        if current in self.not_allowed:
            return 403, {"error": "rotation_not_allowed", "message": "This registration does "
                         "not allow its holder to rotate it."}
        try:
            document = json.loads(body)
            successor = x509.load_pem_x509_certificate(document["certificate"].encode())
            signature = base64.b64decode(document["signature"], validate=True)
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            return 400, {"error": "invalid_request", "message": "The body is not a rotation."}
        if not verify_proof(caller, successor, signature):
            return 403, {"error": "successor_invalid", "message": "The signature does not "
                         "prove possession of the successor's key."}
        self.received.append(document)
        return 201, {"thumbprint": sha256_hex(successor), "rotated_from": current,
                     "not_after": f"{successor.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"}

    def _handler(self) -> type[QuietHandler]:
        stand_in = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.read_body()
                der = self.connection.getpeercert(binary_form=True)
                status, document = stand_in.answer(x509.load_der_x509_certificate(der), body)
                self.answer(status, json.dumps(document).encode(),
                            {"Content-Type": "application/json"})

        return Handler
