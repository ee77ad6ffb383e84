"""Is this CRL usable for certificates of this CA? Pure functions, SPEC §2a and RFC 5280 §6.3.

A usable CRL becomes a :class:`CrlIndex`: its dates, its scope, and every revoked serial in
a dict built once, so a lookup never scans the list. Every failure is a :class:`CrlInvalid`
whose message names the rule. ``cryptography`` parses; every check is ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import CRLEntryExtensionOID, ExtensionOID

from certsas.clock import iso
from certsas.signatures import algorithm_name, is_accepted

# Issuer and relying party clocks disagree a little; the same leeway as OCSP.
CLOCK_SKEW = timedelta(minutes=5)

# Extensions we act on, so they may be critical; any other critical one makes the list unusable.
_UNDERSTOOD = frozenset({ExtensionOID.ISSUING_DISTRIBUTION_POINT, ExtensionOID.CRL_NUMBER,
                         ExtensionOID.AUTHORITY_KEY_IDENTIFIER})
_UNDERSTOOD_ENTRY = frozenset({CRLEntryExtensionOID.CRL_REASON,
                               CRLEntryExtensionOID.INVALIDITY_DATE})


class CrlInvalid(Exception):
    """The CRL must not be used; the message says which rule it breaks."""


@dataclass(frozen=True)
class CrlIndex:
    """A validated CRL, reduced to what lookups need (the DER and the parsed list are dropped)."""

    this_update: datetime
    next_update: datetime
    # serial -> reason (None when the entry gives none); certificateHold is in here too.
    revoked: dict[int, x509.ReasonFlags | None]
    # The issuing distribution point's names, when it has some: the certificate must name one.
    scope: frozenset[str] | None = None

    def reason(self, serial: int) -> tuple[bool, x509.ReasonFlags | None]:
        """(revoked?, reason): a dict lookup."""
        if serial in self.revoked:
            return True, self.revoked[serial]
        return False, None


def validate_crl(der: bytes, issuer: x509.Certificate, now: datetime) -> CrlIndex:
    """Accept ``der`` only if it is a complete, current CRL signed by ``issuer``; index it."""
    try:
        # RFC 5280 says DER over HTTP; some servers publish PEM, which says the same thing.
        if der.lstrip().startswith(b"-----BEGIN"):
            crl = x509.load_pem_x509_crl(der)
        else:
            crl = x509.load_der_x509_crl(der)
    except ValueError:
        raise CrlInvalid("CRL does not parse (DER or PEM expected)") from None
    try:
        check_issuer(crl, issuer)
        next_update = check_freshness(crl, now)
        scope = check_extensions(crl)
        revoked = index_entries(crl)
    except (ValueError, UnsupportedAlgorithm) as exc:  # a field that parsed lazily is malformed
        raise CrlInvalid(f"CRL is malformed: {type(exc).__name__}") from None
    return CrlIndex(crl.last_update_utc, next_update, revoked, scope)


def check_issuer(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> None:
    """Issued and signed by the CA that issued the leaf, with an accepted algorithm."""
    if crl.issuer != issuer.subject:
        raise CrlInvalid("CRL issuer is not the certificate's issuing CA")
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.crl_sign:
        raise CrlInvalid("the issuing CA's key usage does not allow cRLSign")
    key = issuer.public_key()
    oid = crl.signature_algorithm_oid
    if not is_accepted(key, oid):
        name = algorithm_name(oid)
        raise CrlInvalid(f"CRL signature algorithm {name} is not accepted for the CA's key")
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey
                      | ed25519.Ed25519PublicKey) or not crl.is_signature_valid(key):
        raise CrlInvalid("CRL signature does not verify with the issuing CA's key")


def check_freshness(crl: x509.CertificateRevocationList, now: datetime) -> datetime:
    """thisUpdate not in the future, nextUpdate present and not passed; both with skew."""
    this_update, next_update = crl.last_update_utc, crl.next_update_utc
    if this_update > now + CLOCK_SKEW:
        raise CrlInvalid(f"CRL thisUpdate {iso(this_update)} is in the future")
    if next_update is None:
        raise CrlInvalid("CRL has no nextUpdate (cannot tell when it stops being current)")
    if next_update < this_update:
        raise CrlInvalid("CRL nextUpdate is before thisUpdate")
    if next_update < now - CLOCK_SKEW:
        raise CrlInvalid(f"CRL is stale: nextUpdate {iso(next_update)} has passed")
    return next_update


def check_extensions(crl: x509.CertificateRevocationList) -> frozenset[str] | None:
    """No delta, no unrecognised critical extension, a scope of every end-entity certificate.

    Returns the issuing distribution point's URIs, if it names any.
    """
    extensions = crl.extensions
    for extension in extensions:
        if extension.oid == ExtensionOID.DELTA_CRL_INDICATOR:
            raise CrlInvalid("CRL is a delta CRL; delta CRLs are not used")
        if extension.critical and extension.oid not in _UNDERSTOOD:
            raise CrlInvalid(f"CRL has an unrecognised critical extension "
                             f"{extension.oid.dotted_string}")
    try:
        idp = extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return None
    if idp.only_contains_ca_certs:
        raise CrlInvalid("CRL covers CA certificates only (issuing distribution point)")
    if idp.only_contains_attribute_certs:
        raise CrlInvalid("CRL covers attribute certificates only (issuing distribution point)")
    if idp.only_some_reasons is not None:
        raise CrlInvalid("CRL covers only some revocation reasons (issuing distribution point)")
    if idp.indirect_crl:
        raise CrlInvalid("CRL is an indirect CRL; indirect CRLs are not used")
    if idp.relative_name is not None:
        raise CrlInvalid("CRL's issuing distribution point has a relative name; not supported")
    if idp.full_name is None:
        return None
    return frozenset(_uri(name) for name in idp.full_name if _uri(name))


def index_entries(crl: x509.CertificateRevocationList) -> dict[int, x509.ReasonFlags | None]:
    """serial -> reason, every entry checked once: this is the one pass over the list."""
    revoked: dict[int, x509.ReasonFlags | None] = {}
    reason_oid = CRLEntryExtensionOID.CRL_REASON
    for entry in crl:
        reason = None
        for extension in entry.extensions:
            oid = extension.oid
            if oid == reason_oid:
                reason = extension.value.reason
            elif oid == CRLEntryExtensionOID.CERTIFICATE_ISSUER:
                raise CrlInvalid("CRL entry names a certificate issuer (indirect CRL); not used")
            elif extension.critical and oid not in _UNDERSTOOD_ENTRY:
                raise CrlInvalid(f"CRL entry has an unrecognised critical extension "
                                 f"{oid.dotted_string}")
        revoked[entry.serial_number] = reason
    return revoked


def covers(index: CrlIndex, certificate: x509.Certificate) -> bool:
    """A CRL whose issuing distribution point is named must be one the certificate names.

    RFC 5280 §6.3.3 (b)(2)(i): a partitioned CRL for other certificates says nothing of this one.
    """
    if index.scope is None:
        return True
    return bool(index.scope & set(distribution_point_urls(certificate)))


def distribution_point_urls(certificate: x509.Certificate) -> list[str]:
    """Every URI of the certificate's CRL distribution points, in order."""
    try:
        cdp = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [_uri(name) for point in cdp if point.full_name for name in point.full_name
            if _uri(name)]


def distribution_point_url(certificate: x509.Certificate) -> str | None:
    """SPEC §2a: the first http or https URI, taking the distribution points in order."""
    for url in distribution_point_urls(certificate):
        if url.lower().startswith(("http://", "https://")):
            return url
    return None


def _uri(name: x509.GeneralName) -> str:
    return name.value if isinstance(name, x509.UniformResourceIdentifier) else ""
