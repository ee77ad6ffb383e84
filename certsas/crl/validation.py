"""Is this CRL usable for certificates of this CA? Pure functions, SPEC §2a and RFC 5280 §6.3.

A usable CRL becomes a :class:`CrlIndex`: its dates, its number, its scope, and every revoked
serial in a dict built once, so a lookup never scans the list. Every failure is a
:class:`CrlInvalid` whose message names the rule. ``cryptography`` parses; every check is ours.

The bytes come from a server (or anyone on the path of an http URL): whatever ``cryptography``
raises while reading them (``DuplicateExtension``, ``UnsupportedGeneralNameType``,
``InvalidVersion``, a ``ValueError`` from a field parsed lazily, ...) is a :class:`CrlInvalid`
too, never an exception that escapes. Each public check guarantees that on its own.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ParamSpec, TypeVar
from urllib.parse import urlsplit, urlunsplit

from cryptography import x509
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
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")

P = ParamSpec("P")
R = TypeVar("R")


class CrlInvalid(Exception):
    """The CRL must not be used; the message says which rule it breaks."""


def _reading(check: Callable[P, R]) -> Callable[P, R]:
    """Whatever reading a server's bytes raises inside ``check`` becomes a CrlInvalid."""
    @functools.wraps(check)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return check(*args, **kwargs)
        except CrlInvalid:
            raise
        except Exception as exc:  # the peer's bytes: any exception means "not usable"
            raise CrlInvalid(f"CRL is malformed ({type(exc).__name__})") from None
    return guarded


@dataclass(frozen=True)
class CrlIndex:
    """A validated CRL, reduced to what lookups need (the DER and the parsed list are dropped)."""

    this_update: datetime
    next_update: datetime
    # serial -> reason (None when the entry gives none); certificateHold is in here too.
    revoked: dict[int, x509.ReasonFlags | None]
    # The issuing distribution point's names (normalised, :func:`normalise_uri`), if it has some.
    scope: frozenset[str] | None = None
    number: int | None = None  # the CRL number extension, when present

    def reason(self, serial: int) -> tuple[bool, x509.ReasonFlags | None]:
        """(revoked?, reason): a dict lookup."""
        if serial in self.revoked:
            return True, self.revoked[serial]
        return False, None

    def is_older_than(self, other: CrlIndex) -> bool:
        """SPEC §2a: by CRL number when both have one (thisUpdate breaks a tie), else thisUpdate."""
        if self.number is not None and other.number is not None:
            return (self.number, self.this_update) < (other.number, other.this_update)
        return self.this_update < other.this_update

    def describe(self) -> str:
        number = f"number {self.number}, " if self.number is not None else ""
        return f"{number}thisUpdate {iso(self.this_update)}"


@_reading
def validate_crl(der: bytes, issuer: x509.Certificate, now: datetime,
                 anchors: Sequence[x509.Certificate] = ()) -> CrlIndex:
    """Accept ``der`` only if it is one complete, current CRL for ``issuer``'s certificates;
    index it. ``anchors`` (TRUSTED_CA_CERTS) may hold the CA's renewed certificate, which
    may sign in its place (:func:`check_signer`)."""
    crl = read_crl(der)
    check_signer(crl, issuer, anchors, now)
    return index_crl(crl, now)


@_reading
def read_crl(der: bytes) -> x509.CertificateRevocationList:
    """Exactly one CRL, DER (RFC 5280 says DER over HTTP) or PEM (some servers publish it)."""
    body = der.lstrip()
    if body.startswith(b"-----BEGIN"):
        # load_pem_x509_crl reads the first block and ignores the rest: which of several
        # CRLs would be used is the server's choice, so a body with more is not used.
        if body.count(b"-----BEGIN") != 1:
            raise CrlInvalid("CRL body holds more than one PEM block (one CRL expected)")
        loader = x509.load_pem_x509_crl
    else:
        loader = x509.load_der_x509_crl  # rejects bytes after the one CRL
    try:
        return loader(body)
    except ValueError:
        raise CrlInvalid("CRL does not parse (one DER or PEM CRL expected)") from None


@_reading
def index_crl(crl: x509.CertificateRevocationList, now: datetime) -> CrlIndex:
    """Every check but the signer's, and the index: what follows a verified signature."""
    next_update = check_freshness(crl, now)
    scope = check_extensions(crl)
    revoked = index_entries(crl)
    return CrlIndex(crl.last_update_utc, next_update, revoked, scope, crl_number(crl))


@_reading
def check_signer(crl: x509.CertificateRevocationList, issuer: x509.Certificate,
                 anchors: Sequence[x509.Certificate], now: datetime) -> x509.Certificate:
    """Issued under the leaf issuer's name and signed by it or, after that CA renewed its key,
    by a certificate in ``anchors`` with the same name, cRLSign and a current validity
    (RFC 5280 §6.3.3 (f): the CRL issuer's path is validated on its own). The signer."""
    if crl.issuer != issuer.subject:
        raise CrlInvalid("CRL issuer is not the certificate's issuing CA")
    refusal = _refuse_signer(crl, issuer, "the issuing CA's", must_name_crl_sign=False)
    if refusal is None:
        return issuer
    for renewed in anchors:
        if renewed == issuer or renewed.subject != issuer.subject:
            continue
        if not renewed.not_valid_before_utc - CLOCK_SKEW <= now \
                <= renewed.not_valid_after_utc + CLOCK_SKEW:
            continue
        if _refuse_signer(crl, renewed, "a renewed CA's", must_name_crl_sign=True) is None:
            return renewed
    raise CrlInvalid(refusal)


def _refuse_signer(crl: x509.CertificateRevocationList, signer: x509.Certificate, whose: str,
                   *, must_name_crl_sign: bool) -> str | None:
    """Why ``signer`` did not sign ``crl`` acceptably, or None if it did."""
    try:
        usage: x509.KeyUsage | None = signer.extensions.get_extension_for_class(
            x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    # RFC 5280 §6.3.3 (f) asks cRLSign only of a key usage that is present; a renewed
    # certificate stands in for the one the leaf names, so it must say so outright.
    if (usage is None and must_name_crl_sign) or (usage is not None and not usage.crl_sign):
        return f"{whose} key usage does not allow cRLSign"
    key = signer.public_key()
    oid = crl.signature_algorithm_oid
    if not is_accepted(key, oid):
        return f"CRL signature algorithm {algorithm_name(oid)} is not accepted for {whose} key"
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey
                      | ed25519.Ed25519PublicKey) or not crl.is_signature_valid(key):
        return f"CRL signature does not verify with {whose} key"
    return None


@_reading
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


@_reading
def crl_number(crl: x509.CertificateRevocationList) -> int | None:
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return None


@_reading
def check_extensions(crl: x509.CertificateRevocationList) -> frozenset[str] | None:
    """No delta, no unrecognised critical extension, a scope of every end-entity certificate.

    Returns the issuing distribution point's URIs (normalised), if it names any.
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
    return frozenset(normalise_uri(uri) for uri in _uris(idp.full_name))


@_reading
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


def covers(index: CrlIndex, certificate: x509.Certificate, fetched_url: str) -> bool:
    """A CRL whose issuing distribution point is named must be one the certificate names
    (RFC 5280 §6.3.3 (b)(2)(i): a partition for other certificates says nothing of this one),
    or, for a certificate that names none (CRL_URL), the URL fetched. Scheme, host and
    percent-escapes compare case-insensitively (RFC 3986 §6.2.2.1)."""
    if index.scope is None:
        return True
    names = distribution_point_urls(certificate) or [fetched_url]
    return not index.scope.isdisjoint(normalise_uri(name) for name in names)


def distribution_point_urls(certificate: x509.Certificate) -> list[str]:
    """Every URI of the certificate's CRL distribution points, in order."""
    try:
        cdp = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [uri for point in cdp if point.full_name for uri in _uris(point.full_name)]


def distribution_point_url(certificate: x509.Certificate) -> str | None:
    """SPEC §2a: the first http or https URI, taking the distribution points in order."""
    for url in distribution_point_urls(certificate):
        if url.lower().startswith(("http://", "https://")):
            return url
    return None


def normalise_uri(uri: str) -> str:
    """RFC 3986 §6.2.2.1: scheme and host lower-cased, percent-escapes upper-cased; the rest
    (user, path, query) is case-sensitive and kept. Unparseable text is compared as it is."""
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return uri
    netloc = parts.netloc
    if host is not None:
        user = netloc.rpartition("@")[0]
        host = f"[{host}]" if ":" in host else host
        netloc = (f"{user}@" if "@" in netloc else "") + host \
            + (f":{port}" if port is not None else "")
    upper = functools.partial(_PERCENT_ESCAPE.sub, lambda m: m.group(0).upper())
    return urlunsplit((parts.scheme.lower(), netloc, upper(parts.path), upper(parts.query),
                       upper(parts.fragment)))


def _uris(names: Sequence[x509.GeneralName]) -> list[str]:
    return [name.value for name in names if isinstance(name, x509.UniformResourceIdentifier)]
