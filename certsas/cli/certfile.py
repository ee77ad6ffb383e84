"""A certificate file an operator hands to ``certsas register``: PEM or DER, one certificate.

DER is what Windows' certificate export and many CAs' download links give (``.cer``,
``.der``), so it is read as it is rather than refused with an ``openssl`` line to run.
The fields are read through :class:`certsas.clientcert.PresentedCertificate`, the same
door the app's requests pass: a certificate the app would call malformed (invalid UTF-8
in a name, a duplicate extension, a serial that is not positive) is one line here too,
never a traceback, and ``--force`` cannot help it: the app refuses it on every request.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path

from cryptography import x509

from certsas.cli.errors import CliError
from certsas.clientcert import PresentedCertificate
from certsas.errors import ClientCertificateMalformed

PEM_MARK = b"-----BEGIN"
_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]*?)-----END CERTIFICATE-----")
# What a file that is neither usually is: a PFX, whose certificate OpenSSL takes out.
CONVERT_HINT = ("(from a .pfx or .p12: openssl pkcs12 -in FILE -clcerts -nokeys -out cert.pem "
                "writes its certificate as PEM)")


def read_certificate(path: Path) -> PresentedCertificate:
    """The one certificate in ``path`` (PEM or DER), its fields already parsed."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    der = _pem_der(path, data) if PEM_MARK in data[:4096] else data
    try:
        return PresentedCertificate.from_der(der)
    except ClientCertificateMalformed:
        if PEM_MARK not in data[:4096] and not _looks_like_der(data):
            raise CliError(f"{path} is neither a PEM nor a DER certificate {CONVERT_HINT}"
                           ) from None
        raise CliError(f"{path}: {_unreadable_field(der)} does not parse; the app "
                       "refuses it as client_certificate_malformed, so it cannot be "
                       "registered, even with --force") from None


def _pem_der(path: Path, data: bytes) -> bytes:
    """The DER of the one CERTIFICATE block, not parsed yet: parsing is the door's job."""
    blocks = _PEM_BLOCK.findall(data)
    if not blocks:
        raise CliError(f"{path} holds no PEM certificate (a key or a request?)")
    if len(blocks) != 1:
        raise CliError(f"{path} holds {len(blocks)} certificates; register one at a time")
    try:
        return base64.b64decode(b"".join(blocks[0].split()), validate=True)
    except binascii.Error:
        raise CliError(f"{path}: its PEM block is not base64") from None


def _looks_like_der(data: bytes) -> bool:
    """A DER SEQUENCE whose long-form length covers the whole file (every certificate)."""
    if len(data) < 4 or data[0] != 0x30 or not 0x81 <= data[1] <= 0x84:
        return False
    size = data[1] & 0x7F
    length = int.from_bytes(data[2:2 + size], "big")
    return 2 + size + length == len(data)


def _unreadable_field(der: bytes) -> str:
    """Which field the reader stumbled on, in the operator's words (never its bytes)."""
    try:
        certificate = x509.load_der_x509_certificate(der)
    except x509.InvalidVersion:
        return "its version"
    except ValueError:
        return "it"
    probes = (("its subject", lambda: certificate.subject.rfc4514_string()),
              ("its issuer", lambda: certificate.issuer.rfc4514_string()),
              ("its validity dates", lambda: certificate.not_valid_after_utc),
              ("an extension", lambda: certificate.extensions),
              ("its serial number (not positive)", lambda: _positive(certificate.serial_number)))
    for name, probe in probes:
        try:
            probe()
        except Exception:  # whatever the reader raises: the name is what matters here
            return name
    return "one of its fields"


def _positive(serial: int) -> None:
    if serial <= 0:
        raise ValueError
