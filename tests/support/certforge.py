"""Certificates ``CertificateBuilder`` will not make: edit the TBS bytes, re-sign with the CA key.

A CA-signed certificate with a bad field is how an attacker who holds a certificate
from a trusted CA (or the fuzz, standing in for one) gets past the signature check to
the code behind it. The DER codec is the one in :mod:`tests.support.ocsp_faults`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID

from certsas.devtools.pki import CLIENT_AUTH, CertificateAuthority, PrivateKey, name
from tests.support.ocsp_faults import (
    BIT_STRING,
    SEQUENCE,
    der,
    der_children,
    der_content,
    sign_sha256,
)


def split_certificate(certificate_der: bytes) -> tuple[bytes, bytes]:
    """(tbsCertificate TLV, signatureAlgorithm TLV) of a DER certificate."""
    (tbs_tag, tbs), (alg_tag, alg), _signature = der_children(der_content(certificate_der))
    return der(tbs_tag, tbs), der(alg_tag, alg)


def sign_tbs(tbs_der: bytes, algorithm_der: bytes, key: PrivateKey) -> bytes:
    """A certificate around ``tbs_der`` (any bytes, well-formed or not), signed by ``key``."""
    signature = sign_sha256(key, tbs_der)
    return der(SEQUENCE, tbs_der + algorithm_der + der(BIT_STRING, b"\x00" + signature))


def resign_with_edit(certificate_der: bytes, old: bytes, new: bytes, key: PrivateKey) -> bytes:
    """The certificate with ``old`` replaced by ``new`` (same length) in its TBS, re-signed."""
    assert len(old) == len(new)
    tbs, algorithm = split_certificate(certificate_der)
    assert tbs.count(old) == 1, "the bytes to edit must occur exactly once"
    return sign_tbs(tbs.replace(old, new), algorithm, key)


# --- leaves the dev PKI's ``issue`` does not make -----------------------------------

AnyKey = PrivateKey | dsa.DSAPrivateKey


def leaf(
    ca: CertificateAuthority,
    subject: x509.Name | None = None,
    *,
    san: list[x509.GeneralName] | None = None,
    san_critical: bool = False,
    key: AnyKey | None = None,
    extensions: tuple[x509.ExtensionType, ...] = (),
    serial: int | None = None,
) -> bytes:
    """The DER of a client-auth leaf signed by ``ca``, with exactly the subject, SAN and key
    given (``subject=None`` is a CN; ``x509.Name([])`` is the empty subject)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject if subject is not None else name("forged leaf"))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                       critical=False)
    )
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=san_critical)
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(Encoding.DER)


def invalid_utf8_subject(ca: CertificateAuthority) -> bytes:
    """CA-signed, with a CN whose UTF8String holds bytes that are not UTF-8."""
    marker = b"utf8-XXXX"
    der = leaf(ca, name(marker.decode()))
    return resign_with_edit(der, marker, b"utf8-\xff\xfe\xfd\xfc", ca.key)


def invalid_version(ca: CertificateAuthority) -> bytes:
    """CA-signed, with version 6 (X.509 has v1 to v3)."""
    return resign_with_edit(leaf(ca), b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x05", ca.key)


def serial(ca: CertificateAuthority, value: int) -> bytes:
    """CA-signed, with the one-byte serial ``value`` (0 or negative: what the builder refuses)."""
    version_and_serial = b"\xa0\x03\x02\x01\x02\x02\x01"
    return resign_with_edit(leaf(ca, serial=1), version_and_serial + b"\x01",
                            version_and_serial + (value % 256).to_bytes(1, "big"), ca.key)


def nine_byte_ip_san(ca: CertificateAuthority) -> bytes:
    """CA-signed, with a SAN iPAddress of 9 bytes (4 or 16, or 8 or 32 as a network)."""
    raw = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
                                      b"\x30\x0b\x87\x09" + bytes(range(9)))
    return leaf(ca, extensions=(raw,))


def duplicate_extension(ca: CertificateAuthority) -> bytes:
    """CA-signed, with the same extension twice (the fuzz found cryptography's
    ``DuplicateExtension``, which is not a ``ValueError``)."""
    one = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.45471.9.1"), b"\x05\x00")
    two = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.45471.9.2"), b"\x05\x00")
    der = leaf(ca, extensions=(one, two))
    # The two OIDs' encodings differ in their last byte; make the second the first.
    return resign_with_edit(der, b"\x2b\x06\x01\x04\x01\x82\xe3\x1f\x09\x02",
                            b"\x2b\x06\x01\x04\x01\x82\xe3\x1f\x09\x01", ca.key)
