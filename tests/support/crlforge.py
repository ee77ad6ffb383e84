"""CRLs ``CertificateRevocationListBuilder`` will not make, signed by a real CA key.

Each reproduces a defect of a CRL in openssl's test suite (test/crltest.c; read to learn the
defects, none of its files copied) on our own CA: built with the builder, then the TBS bytes
edited and re-signed, so the signature verifies and validation gets past it to the defect.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import CRLEntryExtensionOID, ExtensionOID

from certsas.devtools.pki import CertificateAuthority
from tests.support.certforge import sign_tbs, split_certificate
from tests.support.ocsp_faults import SEQUENCE, der
from tests.support.pki import Pki

CONTEXT_0, CONTEXT_4, CONTEXT_5 = 0xA0, 0xA4, 0xA5
URI = 0x86
# Placeholder OIDs (2.5.29.99 and .98) the edit turns into CRL number and reason code:
# same length, so only those bytes change.
_SPARE_LIST_OID = x509.ObjectIdentifier("2.5.29.99")
_SPARE_ENTRY_OID = x509.ObjectIdentifier("2.5.29.98")


def _raw(oid: x509.ObjectIdentifier, value: bytes) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(oid, value)


def resign(crl_der: bytes, ca: CertificateAuthority, edit: Callable[[bytes], bytes]) -> bytes:
    """``crl_der`` with ``edit`` applied to its TBS, signed again with ``ca``'s key."""
    tbs, algorithm = split_certificate(crl_der)  # a CRL is laid out as a certificate is
    return sign_tbs(edit(tbs), algorithm, ca.key)


def _replace_once(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    def edit(tbs: bytes) -> bytes:
        assert tbs.count(old) == 1 and len(old) == len(new)
        return tbs.replace(old, new)
    return edit


def duplicate_list_extension(ca: CertificateAuthority) -> bytes:
    """Two CRL number extensions on the list (cryptography: DuplicateExtension)."""
    crl = ca.crl([], extensions=[(_raw(_SPARE_LIST_OID, b"\x02\x01\x63"), False)])
    return resign(crl, ca, _replace_once(b"\x06\x03\x55\x1d\x63", b"\x06\x03\x55\x1d\x14"))


def duplicate_entry_extension(ca: CertificateAuthority, serial: int) -> bytes:
    """An entry with two reason codes (cryptography: DuplicateExtension)."""
    crl = ca.crl([(serial, x509.ReasonFlags.key_compromise)],
                 entry_extensions=[(_raw(_SPARE_ENTRY_OID, b"\x0a\x01\x04"), False)])
    return resign(crl, ca, _replace_once(b"\x06\x03\x55\x1d\x62", b"\x06\x03\x55\x1d\x15"))


def duplicate_serial(ca: CertificateAuthority, serial: int) -> bytes:
    """The same serial listed twice, with different reasons (it is revoked either way)."""
    return ca.crl([(serial, x509.ReasonFlags.key_compromise), (serial, x509.ReasonFlags.superseded)])


def idp_wrong_tag(ca: CertificateAuthority, url: str, tag: int) -> bytes:
    """An issuing distribution point whose full name wraps the URI in a wrong [``tag``]:
    a directoryName [4] that holds no Name, or an ediPartyName [5]."""
    uri = der(URI, url.encode("ascii"))
    idp = der(SEQUENCE, der(CONTEXT_0, der(CONTEXT_0, der(tag, uri))))
    return ca.crl([], extensions=[(_raw(ExtensionOID.ISSUING_DISTRIBUTION_POINT, idp), True)])


def idp_several_only_flags(ca: CertificateAuthority) -> bytes:
    """onlyContainsUserCerts and onlyContainsCACerts both true (RFC 5280: at most one)."""
    idp = der(SEQUENCE, b"\x81\x01\xff\x82\x01\xff")
    return ca.crl([], extensions=[(_raw(ExtensionOID.ISSUING_DISTRIBUTION_POINT, idp), True)])


def idp_empty(ca: CertificateAuthority) -> bytes:
    """An issuing distribution point that is an empty SEQUENCE (RFC 5280 §5.2.5: must not)."""
    return ca.crl([], extensions=[(_raw(ExtensionOID.ISSUING_DISTRIBUTION_POINT, b"\x30\x00"),
                                   True)])


def idp_constructed_boolean(ca: CertificateAuthority) -> bytes:
    """onlyContainsUserCerts encoded constructed ([1] around a BOOLEAN), not IMPLICIT."""
    idp = der(SEQUENCE, b"\xa1\x03\x01\x01\xff")
    return ca.crl([], extensions=[(_raw(ExtensionOID.ISSUING_DISTRIBUTION_POINT, idp), True)])


def invalid_version(ca: CertificateAuthority) -> bytes:
    """version 6 (a CRL is v1 or v2) (cryptography: InvalidVersion)."""
    def edit(tbs: bytes) -> bytes:
        header = 2 + (tbs[1] & 0x7F if tbs[1] & 0x80 else 0)
        assert tbs[header:header + 3] == b"\x02\x01\x01"
        return tbs[:header] + b"\x02\x01\x05" + tbs[header + 3:]
    return resign(ca.crl([]), ca, edit)


def crl_number_not_integer(ca: CertificateAuthority) -> bytes:
    """A CRL number that is an OCTET STRING (the dev CA's ``crl`` always adds a good one)."""
    now = datetime.now(UTC)
    return (x509.CertificateRevocationListBuilder().issuer_name(ca.certificate.subject)
            .last_update(now - timedelta(minutes=1)).next_update(now + timedelta(days=1))
            .add_extension(_raw(ExtensionOID.CRL_NUMBER, b"\x04\x03\x01\x02\x03"), critical=False)
            .sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))


def delta_indicator_not_integer(ca: CertificateAuthority) -> bytes:
    """A delta CRL indicator that is an OCTET STRING."""
    return ca.crl([], extensions=[(_raw(ExtensionOID.DELTA_CRL_INDICATOR, b"\x04\x01\x07"), True)])


def invalidity_date_utc_time(ca: CertificateAuthority, serial: int) -> bytes:
    """An invalidity date in UTCTime (RFC 5280 §5.3.2: GeneralizedTime)."""
    value = der(0x17, b"260101000000Z")
    return ca.crl([(serial, None)],
                  entry_extensions=[(_raw(CRLEntryExtensionOID.INVALIDITY_DATE, value), False)])


def certificate_issuer_without_indirect(ca: CertificateAuthority, serial: int) -> bytes:
    """An entry naming a certificate issuer on a CRL that does not say it is indirect."""
    issuer = x509.CertificateIssuer([x509.DirectoryName(ca.certificate.subject)])
    return ca.crl([(serial, None)], entry_extensions=[(issuer, True)])


def unknown_critical_after_idp(ca: CertificateAuthority) -> bytes:
    """A valid critical issuing distribution point followed by an unknown critical extension."""
    idp = x509.IssuingDistributionPoint(
        full_name=None, relative_name=None, only_contains_user_certs=True,
        only_contains_ca_certs=False, only_some_reasons=None, indirect_crl=False,
        only_contains_attribute_certs=False)
    unknown = _raw(x509.ObjectIdentifier("1.3.6.1.4.1.55555.7"), b"")
    return ca.crl([], extensions=[(idp, True), (unknown, True)])


def garbage_pem() -> bytes:
    """PEM armour around base64 that decodes to no CRL at all."""
    return b"-----BEGIN X509 CRL-----\n" + b"A" * 64 + b"\n-----END X509 CRL-----\n"


def pem_of(crl_der: bytes) -> bytes:
    return x509.load_der_x509_crl(crl_der).public_bytes(serialization.Encoding.PEM)


def two_crls_in_one_pem(first: bytes, second: bytes) -> bytes:
    return pem_of(first) + pem_of(second)




_IDP_URL = "http://crl.example/issuing.crl"
# The defects of openssl's CRL test files, on our issuing CA, for a leaf of ``serial``:
# name -> (make(pki, serial), what validation says). Each must be refused, none may escape.
OPENSSL_DEFECTS: dict[str, tuple[Callable[[Pki, int], bytes], str]] = {
    "duplicate extension on the list": (
        lambda pki, serial: duplicate_list_extension(pki.issuing), "DuplicateExtension"),
    "duplicate extension on an entry": (
        lambda pki, serial: duplicate_entry_extension(pki.issuing, serial), "DuplicateExtension"),
    "IDP full name in a [4] tag": (
        lambda pki, serial: idp_wrong_tag(pki.issuing, _IDP_URL, CONTEXT_4), "malformed"),
    "IDP full name in a [5] tag": (
        lambda pki, serial: idp_wrong_tag(pki.issuing, _IDP_URL, CONTEXT_5),
        "UnsupportedGeneralNameType"),
    "IDP with two only-flags": (lambda pki, serial: idp_several_only_flags(pki.issuing),
                                "malformed"),
    "IDP empty": (lambda pki, serial: idp_empty(pki.issuing), "malformed"),
    "IDP boolean constructed": (lambda pki, serial: idp_constructed_boolean(pki.issuing),
                                "malformed"),
    "invalid version": (lambda pki, serial: invalid_version(pki.issuing), "InvalidVersion"),
    "CRL number not an INTEGER": (lambda pki, serial: crl_number_not_integer(pki.issuing),
                                  "malformed"),
    "delta indicator not an INTEGER": (
        lambda pki, serial: delta_indicator_not_integer(pki.issuing), "malformed"),
    "invalidity date in UTCTime": (
        lambda pki, serial: invalidity_date_utc_time(pki.issuing, serial), "malformed"),
    "certificate issuer, not indirect": (
        lambda pki, serial: certificate_issuer_without_indirect(pki.issuing, serial),
        "certificate issuer"),
    "unknown critical after the IDP": (
        lambda pki, serial: unknown_critical_after_idp(pki.issuing),
        "unrecognised critical extension"),
    "PEM around garbage": (lambda pki, serial: garbage_pem(), "does not parse"),
    "issued by another CA": (lambda pki, serial: pki.stranger.crl([]), "issuer is not"),
    "two CRLs in one PEM body": (
        lambda pki, serial: two_crls_in_one_pem(pki.issuing.crl([]),
                                                pki.issuing.crl([(serial, None)])),
        "more than one PEM block"),
    "two CRLs in one DER body": (
        lambda pki, serial: pki.issuing.crl([]) + pki.issuing.crl([(serial, None)]),
        "does not parse"),
}


def unnumbered(ca: CertificateAuthority, revoked: list[int], this_update: datetime,
               next_update: datetime) -> bytes:
    """A CRL without a CRL number (the dev CA's ``crl`` always numbers its lists)."""
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.certificate.subject)
               .last_update(this_update).next_update(next_update))
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial)
            .revocation_date(this_update - timedelta(hours=1)).build())
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
