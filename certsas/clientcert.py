"""Reading the client certificate the front end forwarded in a request header (SPEC §2).

Five encodings are accepted, detected from the value itself:

- base64 DER, no armour (App Service's ``X-ARR-ClientCert``);
- PEM, with newlines or with the newlines folded into spaces by a proxy;
- URL-encoded PEM (Application Gateway's ``client_certificate``, nginx's
  ``$ssl_client_escaped_cert``);
- RFC 9440 ``Client-Cert``: ``:base64 DER:``, ``=`` padding optional (RFC 8941);
- Envoy's ``X-Forwarded-Client-Cert`` element (Azure Container Apps): the URL-encoded
  PEM in its ``Cert="..."`` pair.

Detection is unambiguous: RFC 9440 starts and ends with ``:``; base64 DER is the
base64 alphabet alone (``=`` only as trailing padding); an XFCC element starts with
one of Envoy's keys and ``=`` (``Hash=``, ``Cert=``...), which base64 of a certificate
never does; URL-encoded PEM holds ``%``; PEM starts with ``-----BEGIN``.

Anything else, more than one certificate, or a value over 16 KiB is malformed. Every
step is linear in the length of the value (plain scans, anchored regular expressions
applied at known positions), so a hostile 16 KiB header costs what a normal one does.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from certsas.errors import ClientCertificateMalformed, ClientCertificateMissing
from certsas.thumbprints import sha256_thumbprint

MAX_HEADER_BYTES = 16 * 1024
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_URL_ENCODED = re.compile(r"(?:[^%]++|%[0-9A-Fa-f]{2})*+")
_PEM_BEGIN, _PEM_END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
# Envoy's XFCC keys (its docs, "x-forwarded-client-cert"); matched case-insensitively.
_XFCC_START = re.compile(r"(?:By|Hash|Cert|Chain|Subject|URI|DNS)\s*=", re.IGNORECASE)
# One Key=value pair and the separator after it; the value quoted (\" escapes a quote)
# or bare. Possessive quantifiers (no backtracking) and .match at the end of the
# previous pair (never a search) keep it linear whatever the value holds.
_XFCC_PAIR = re.compile(
    r'\s*+([A-Za-z][A-Za-z0-9_-]*+)\s*+=\s*+(?:"((?:[^"\\]|\\.)*+)"\s*+|([^;,"]*+))(;|,|\Z)',
    re.DOTALL,
)


@dataclass(frozen=True)
class PresentedCertificate:
    """A certificate as the caller presented it: exact DER bytes, parsed, and thumbprint.

    Every field certsas reads later (subject, issuer, dates, serial, extensions) is read
    once here, so a certificate that parses but holds a field that does not (invalid
    UTF-8 in a name, a malformed extension) is malformed at the door rather than an
    exception in some later check or in the decision log.
    """

    der: bytes
    certificate: x509.Certificate
    thumbprint: str  # SHA-256 of the DER, uppercase hex: the registry key
    subject: str  # RFC 4514, what the decision log and the audit record name

    @classmethod
    def from_der(cls, der: bytes) -> PresentedCertificate:
        try:
            certificate = x509.load_der_x509_certificate(der)
            subject = certificate.subject.rfc4514_string()
            certificate.issuer.rfc4514_string()
            _ = (certificate.not_valid_before_utc, certificate.not_valid_after_utc,
                 certificate.extensions)
            # RFC 5280 §4.1.2.2; cryptography only warns today and will refuse later.
            if certificate.serial_number <= 0:
                raise ValueError("serial number is not positive")
        except (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion,
                x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
            # The type says which rule failed; the message may quote certificate bytes.
            raise ClientCertificateMalformed(
                f"DER does not parse as one X.509 certificate ({type(exc).__name__})") from None
        return cls(der, certificate, sha256_thumbprint(der), subject)


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
    """DER bytes from any of the five accepted encodings."""
    if len(value.encode("utf-8", "surrogatepass")) > MAX_HEADER_BYTES:
        raise ClientCertificateMalformed(f"header longer than {MAX_HEADER_BYTES} bytes")
    text = value.strip()
    if text.startswith(":") and text.endswith(":") and len(text) > 1:
        return _rfc9440_der(text[1:-1])
    if _BASE64.fullmatch(text):
        return _base64_der(text, form="base64 DER")
    if _XFCC_START.match(text):
        return _pem_der(_xfcc_certificate(text))
    if "%" in text:
        if not _URL_ENCODED.fullmatch(text):
            raise ClientCertificateMalformed("URL-encoded value has a stray %")
        text = unquote(text).strip()
        if "-----BEGIN" not in text:
            raise ClientCertificateMalformed("URL-encoded value is not PEM")
    if "-----BEGIN" in text:
        return _pem_der(text)
    return _base64_der(text, form="base64 DER")


def _rfc9440_der(text: str) -> bytes:
    # RFC 8941 §3.3.5: parsers SHOULD accept a byte sequence without its "=" padding.
    if "=" not in text and len(text) % 4 in (2, 3):
        text += "=" * (-len(text) % 4)
    return _base64_der(text, form="RFC 9440")


def _pem_der(text: str) -> bytes:
    """The DER of the one CERTIFICATE block that is all of ``text``; plain scans, no regex."""
    text = text.strip()
    if not text.startswith("-----BEGIN "):
        raise ClientCertificateMalformed("text outside the PEM block")
    if not text.startswith(_PEM_BEGIN):
        raise ClientCertificateMalformed("PEM block is not a CERTIFICATE")
    end = text.find(_PEM_END, len(_PEM_BEGIN))
    if end < 0:
        raise ClientCertificateMalformed("PEM block has no END line")
    body = text[len(_PEM_BEGIN):end]
    if "-" in body:  # another BEGIN or END inside: not one block
        raise ClientCertificateMalformed("PEM holds more than one block")
    rest = text[end + len(_PEM_END):].strip()
    if rest:
        raise ClientCertificateMalformed(
            "PEM holds more than one block" if "-----" in rest else "text outside the PEM block")
    return _base64_der("".join(body.split()), form="PEM")


def _xfcc_certificate(text: str) -> str:
    """The percent-decoded ``Cert`` of the one XFCC element in ``text``."""
    position, cert = 0, None
    while position < len(text):
        pair = _XFCC_PAIR.match(text, position)
        if pair is None or pair.end() == position:
            raise ClientCertificateMalformed("XFCC: not Key=value pairs")
        key, quoted, bare, separator = pair.groups()
        # Other keys may repeat: Envoy writes one DNS (or URI) pair per SAN. Two
        # certificates in one element would leave us guessing whose it is.
        if key.lower() == "cert":
            if cert is not None:
                raise ClientCertificateMalformed("XFCC: Cert appears twice")
            cert = quoted if quoted is not None else (bare or "").strip()
        position = pair.end()
        if separator == ",":
            # A proxy that appends adds one element per hop; whose certificate is it?
            raise ClientCertificateMalformed("XFCC holds more than one element")
    if cert is None:
        raise ClientCertificateMissing("XFCC element has no Cert")
    if not cert:
        raise ClientCertificateMalformed("XFCC Cert is empty")
    # Invalid UTF-8 after decoding becomes U+FFFD, which no PEM holds: malformed, later.
    return unquote(cert.replace('\\"', '"'))


def _base64_der(text: str, *, form: str) -> bytes:
    # Python's decoder tolerates stray padding; a forwarded certificate must be exact.
    if not _BASE64.fullmatch(text) or len(text) % 4:
        raise ClientCertificateMalformed(f"{form}: not base64")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ClientCertificateMalformed(f"{form}: bad base64 padding") from None
