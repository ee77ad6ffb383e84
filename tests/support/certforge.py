"""Certificates ``CertificateBuilder`` will not make: edit the TBS bytes, re-sign with the CA key.

A CA-signed certificate with a bad field is how an attacker who holds a certificate
from a trusted CA (or the fuzz, standing in for one) gets past the signature check to
the code behind it. The DER codec is the one in :mod:`tests.support.ocsp_faults`.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from certsas.devtools.pki import PrivateKey
from tests.support.ocsp_faults import BIT_STRING, SEQUENCE, der, der_children, der_content


def split_certificate(certificate_der: bytes) -> tuple[bytes, bytes]:
    """(tbsCertificate TLV, signatureAlgorithm TLV) of a DER certificate."""
    (tbs_tag, tbs), (alg_tag, alg), _signature = der_children(der_content(certificate_der))
    return der(tbs_tag, tbs), der(alg_tag, alg)


def sign_tbs(tbs_der: bytes, algorithm_der: bytes, key: PrivateKey) -> bytes:
    """A certificate around ``tbs_der`` (any bytes, well-formed or not), signed by ``key``."""
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(tbs_der, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        signature = key.sign(tbs_der, ec.ECDSA(hashes.SHA256()))
    return der(SEQUENCE, tbs_der + algorithm_der + der(BIT_STRING, b"\x00" + signature))


def resign_with_edit(certificate_der: bytes, old: bytes, new: bytes, key: PrivateKey) -> bytes:
    """The certificate with ``old`` replaced by ``new`` (same length) in its TBS, re-signed."""
    assert len(old) == len(new)
    tbs, algorithm = split_certificate(certificate_der)
    assert tbs.count(old) == 1, "the bytes to edit must occur exactly once"
    return sign_tbs(tbs.replace(old, new), algorithm, key)
