"""Reading the client certificate the front end forwarded in a request header (SPEC §2).

Four encodings are accepted, detected from the value itself:

- base64 DER, no armour (App Service's ``X-ARR-ClientCert``);
- PEM, with newlines or with the newlines folded into spaces by a proxy;
- URL-encoded PEM (Application Gateway's ``client_certificate``, nginx's
  ``$ssl_client_escaped_cert``);
- RFC 9440 ``Client-Cert``: ``:base64 DER:``.

Anything else, more than one certificate, or a value over 16 KiB is malformed.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import unquote

from cryptography import x509

from certsas.errors import ClientCertificateMalformed, ClientCertificateMissing
from certsas.thumbprints import sha256_thumbprint

MAX_HEADER_BYTES = 16 * 1024
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


@dataclass(frozen=True)
class PresentedCertificate:
    """A certificate as the caller presented it: exact DER bytes, parsed, and thumbprint."""

    der: bytes
    certificate: x509.Certificate
    thumbprint: str  # SHA-256 of the DER, uppercase hex: the registry key

    @classmethod
    def from_der(cls, der: bytes) -> PresentedCertificate:
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError:
            raise ClientCertificateMalformed("DER does not parse as one X.509 certificate") from None
        return cls(der, certificate, sha256_thumbprint(der))

    @cached_property
    def subject(self) -> str:
        # Cached: the decision log and the audit record both name it, once per request.
        return self.certificate.subject.rfc4514_string()


def find_header(headers: Mapping[str, str], header_name: str) -> str | None:
    """The value of ``header_name``, matched case-insensitively, or None."""
    wanted = header_name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def read_forwarded_certificate(
    headers: Mapping[str, str], header_name: str
) -> PresentedCertificate:
    """The one certificate in ``header_name``; refuse a missing, empty or malformed one."""
    value = find_header(headers, header_name)
    if value is None or not value.strip():
        raise ClientCertificateMissing(f"no {header_name} header, or an empty one")
    return PresentedCertificate.from_der(decode_certificate_header(value))


def decode_certificate_header(value: str) -> bytes:
    """DER bytes from any of the four accepted encodings."""
    if len(value.encode("utf-8", "surrogatepass")) > MAX_HEADER_BYTES:
        raise ClientCertificateMalformed(f"header longer than {MAX_HEADER_BYTES} bytes")
    text = value.strip()
    if text.startswith(":") and text.endswith(":") and len(text) > 1:
        return _base64_der(text[1:-1], form="RFC 9440")
    if "%" in text:
        text = unquote(text).strip()
        if "-----BEGIN" not in text:
            raise ClientCertificateMalformed("URL-encoded value is not PEM")
    if "-----BEGIN" in text:
        return _pem_der(text)
    return _base64_der(text, form="base64 DER")


def _pem_der(text: str) -> bytes:
    blocks = _PEM_BLOCK.findall(text)
    if len(blocks) != 1:
        raise ClientCertificateMalformed(f"PEM holds {len(blocks)} blocks, expected one certificate")
    label, body = blocks[0]
    if label != "CERTIFICATE":
        raise ClientCertificateMalformed(f"PEM block is {label!r}, not CERTIFICATE")
    if _PEM_BLOCK.sub("", text).strip():
        raise ClientCertificateMalformed("text outside the PEM block")
    return _base64_der("".join(body.split()), form="PEM")


def _base64_der(text: str, *, form: str) -> bytes:
    # Python's decoder tolerates stray padding; a forwarded certificate must be exact.
    if not _BASE64.fullmatch(text) or len(text) % 4:
        raise ClientCertificateMalformed(f"{form}: not base64")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ClientCertificateMalformed(f"{form}: bad base64 padding") from None
