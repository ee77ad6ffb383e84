"""The caller's certificate and private key, from the files people actually have.

Accepted: a PEM certificate (leaf first, chain after, the key in the same file or not), a DER
certificate, a PKCS#12 file (.pfx/.p12, which holds both), and a PEM or DER private key,
encrypted or not. A password is asked for (``password``) only when a file needs one. What
cannot be read gets a one-line error naming the file and, where one exists, the ``openssl``
line that converts it.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    PrivateFormat,
    PublicFormat,
    load_der_private_key,
    load_pem_private_key,
    pkcs12,
)

from certsas.client.errors import IdentityError

_PEM_KEY = re.compile(rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.DOTALL)
# A password, or a function asked for one with the file's name when the file turns out to need it.
Password = str | bytes | Callable[[str], str | bytes] | None


@dataclass(frozen=True)
class Identity:
    """A certificate (with any chain it came with) and its private key."""

    certificate: x509.Certificate
    key: PrivateKeyTypes = field(repr=False)
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def thumbprint(self) -> str:
        """SHA-256 of the DER certificate, uppercase hex: how certsas names a registration."""
        return hashlib.sha256(self.certificate.public_bytes(Encoding.DER)).hexdigest().upper()

    def pem(self) -> bytes:
        return self.certificate.public_bytes(Encoding.PEM)

    def ssl_context(self, ca: str | Path | None = None) -> ssl.SSLContext:
        """A TLS client context presenting this identity; trusting ``ca`` (a PEM bundle) or,
        without it, the CAs the HTTP library trusts by default."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=_trusted(ca))
        # ssl loads a key only from a file: hand it one encrypted under a password that lives
        # in this function alone, in a folder only this user can read, deleted at once.
        one_time = secrets.token_urlsafe(32)
        with tempfile.TemporaryDirectory(prefix="certsas-") as folder:
            chain_file, key_file = Path(folder, "chain.pem"), Path(folder, "key.pem")
            chain_file.write_bytes(b"".join(c.public_bytes(Encoding.PEM)
                                            for c in (self.certificate, *self.chain)))
            descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                out.write(self.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8,
                                                 BestAvailableEncryption(one_time.encode())))
            context.load_cert_chain(chain_file, key_file, password=one_time)
        return context


def load_identity(cert: str | Path, key: str | Path | None = None,
                  password: Password = None) -> Identity:
    """The identity in ``cert`` (and ``key``, unless ``cert`` holds the key: PKCS#12, or PEM
    with the key in it). Raises :class:`IdentityError` with a one-line reason."""
    cert_path = Path(cert)
    data = _read(cert_path, "certificate")
    if _is_pkcs12(data):
        return _from_pkcs12(cert_path, data, password)
    certificates, embedded_key = _certificates(cert_path, data)
    if key is not None:
        key_path = Path(key)
        private_key = _private_key(key_path, _read(key_path, "key"), password)
    elif embedded_key is not None:
        key_path, private_key = cert_path, _private_key(cert_path, embedded_key, password)
    else:
        raise IdentityError(f"{cert_path} holds no private key: give the key file as well")
    if _spki(certificates[0].public_key()) != _spki(private_key.public_key()):
        raise IdentityError(f"{key_path} is not the key of {cert_path}")
    return Identity(certificates[0], private_key, tuple(certificates[1:]))


def _trusted(ca: str | Path | None) -> str | None:
    """The CA bundle's path, once it is known to hold PEM certificates."""
    if ca is None:
        return None
    path = Path(ca)
    try:
        x509.load_pem_x509_certificates(_read(path, "CA bundle"))
    except ValueError:
        raise IdentityError(f"{path} is not a PEM certificate") from None
    return str(path)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise IdentityError(f"cannot read {what} {path}: {exc.strerror}") from None


def _certificates(path: Path, data: bytes) -> tuple[list[x509.Certificate], bytes | None]:
    """The certificates of a PEM or DER file, and the PEM key block it also holds, if any."""
    if b"-----BEGIN" not in data:
        try:
            return [x509.load_der_x509_certificate(data)], None
        except ValueError:
            raise IdentityError(f"{path} is not a certificate (PEM, DER or PKCS#12)") from None
    if b"-----BEGIN PKCS7-----" in data:
        raise IdentityError(f"{path} is a PKCS#7 bundle; convert it with "
                            f"`openssl pkcs7 -print_certs -in {path} -out client.pem`")
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise IdentityError(f"{path} is not a PEM certificate") from None
    embedded = _PEM_KEY.search(data)
    return certificates, embedded.group(0) if embedded else None


def _private_key(path: Path, data: bytes, password: Password) -> PrivateKeyTypes:
    load = load_pem_private_key if b"-----BEGIN" in data else load_der_private_key
    try:
        return load(data, password=None)
    except TypeError:  # encrypted: cryptography's way of saying it needs a password
        pass
    except ValueError:
        if b"-----BEGIN" in data and b"PRIVATE KEY-----" not in data:
            raise IdentityError(f"{path} is not a PEM private key") from None
        raise IdentityError(f"{path} is not a private key (PEM or DER), or one of a kind "
                            f"this client cannot read") from None
    secret = _password(path, password)
    try:
        return load(data, password=secret)
    except (TypeError, ValueError):
        raise IdentityError(f"cannot decrypt {path}: wrong password?") from None


def _from_pkcs12(path: Path, data: bytes, password: Password) -> Identity:
    # No password and the empty one are both common; try them before asking.
    for candidate in (None, b""):
        try:
            return _pkcs12_identity(path, pkcs12.load_pkcs12(data, candidate))
        except ValueError:
            continue
    secret = _password(path, password)
    try:
        bundle = pkcs12.load_pkcs12(data, secret)
    except ValueError:
        raise IdentityError(
            f"cannot open {path}: wrong password, or a PKCS#12 this client cannot read; if the "
            f"password is right, convert it with `openssl pkcs12 -in {path} -nodes -out "
            f"client.pem` (add -legacy for an old RC2 export), then use client.pem alone") from None
    return _pkcs12_identity(path, bundle)


def _pkcs12_identity(path: Path, bundle: pkcs12.PKCS12KeyAndCertificates) -> Identity:
    if bundle.cert is None or bundle.key is None:
        raise IdentityError(f"{path} must hold a certificate and its private key")
    chain = tuple(extra.certificate for extra in bundle.additional_certs)
    return Identity(bundle.cert.certificate, bundle.key, chain)


def _password(path: Path, password: Password) -> bytes:
    if password is None:
        raise IdentityError(f"{path} is encrypted: give its password")
    value = password(str(path)) if callable(password) else password
    return value.encode() if isinstance(value, str) else value


def _is_pkcs12(data: bytes) -> bool:
    """A PFX is a DER SEQUENCE whose first element is INTEGER 3 (RFC 7292, PFX.version)."""
    if len(data) < 8 or data[0] != 0x30:
        return False
    length_bytes = data[1] - 0x80 if data[1] & 0x80 else 0
    offset = 2 + length_bytes
    return data[offset:offset + 3] == b"\x02\x01\x03"


def _spki(public_key: object) -> bytes:
    return bytes(public_key.public_bytes(Encoding.DER,  # type: ignore[attr-defined]
                                         PublicFormat.SubjectPublicKeyInfo))
