"""CRL validation and index (pure), and how a fetch target is read from a URL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import cryptography
import cryptography_vectors
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from certsas.crl.validation import (
    CrlIndex,
    CrlInvalid,
    covers,
    distribution_point_url,
    index_crl,
    normalise_uri,
    read_crl,
    validate_crl,
)
from certsas.netfetch import FetchError, NetFetcher, _Target
from tests.support import crlforge
from tests.support.pki import Pki
from tests.support.vectors import certificates_by_subject, vector_crls

NOW = datetime.now(UTC)


def test_the_index_holds_every_serial_and_reason(pki: Pki) -> None:
    listed = [(n, reason) for n, reason in zip(range(1, 40), [
        x509.ReasonFlags.key_compromise, x509.ReasonFlags.certificate_hold, None] * 13,
        strict=True)]
    der = pki.issuing.crl(listed)
    index = validate_crl(der, pki.issuing.certificate, NOW)
    parsed = x509.load_der_x509_crl(der)
    assert set(index.revoked) == {entry.serial_number for entry in parsed}
    assert index.reason(2) == (True, x509.ReasonFlags.certificate_hold)
    assert index.reason(3) == (True, None)
    assert index.reason(1000) == (False, None)
    assert index.next_update == parsed.next_update_utc


def test_pem_is_accepted_too(pki: Pki) -> None:
    der = pki.issuing.crl([(5, None)])
    pem = x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM)
    assert validate_crl(pem, pki.issuing.certificate, NOW).reason(5)[0]


def test_skew_is_five_minutes_either_way(pki: Pki) -> None:
    soon = NOW + timedelta(minutes=4)
    validate_crl(pki.issuing.crl([], this_update=soon), pki.issuing.certificate, NOW)
    late = NOW - timedelta(days=1)
    just_past = pki.issuing.crl([], this_update=late, next_update=NOW - timedelta(minutes=4))
    validate_crl(just_past, pki.issuing.certificate, NOW)
    with pytest.raises(CrlInvalid, match="stale"):
        validate_crl(just_past, pki.issuing.certificate, NOW + timedelta(minutes=2))


def test_a_ca_without_crl_sign_cannot_issue_one(pki: Pki) -> None:
    # A leaf has key usage digitalSignature only; a CRL "by" it names it as issuer.
    leaf = pki.issuing.issue("not a crl issuer")
    crl = (x509.CertificateRevocationListBuilder().issuer_name(leaf.certificate.subject)
           .last_update(NOW).next_update(NOW + timedelta(days=1))
           .sign(leaf.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    with pytest.raises(CrlInvalid, match="cRLSign"):
        validate_crl(crl, leaf.certificate, NOW)


def test_the_first_http_distribution_point_in_order(pki: Pki) -> None:
    uri = x509.UniformResourceIdentifier
    points = [x509.DistributionPoint([uri("ldap://dir/cn=crl")], None, None, None),
              x509.DistributionPoint([uri("HTTPS://a.example/1.crl"), uri("http://b/2.crl")],
                                     None, None, None)]
    leaf = pki.issuing.issue("cdps", extra_extensions=[x509.CRLDistributionPoints(points)])
    assert distribution_point_url(leaf.certificate) == "HTTPS://a.example/1.crl"
    assert distribution_point_url(pki.client.certificate) is None


def _scoped_to(pki: Pki, url: str, *, user_only: bool) -> CrlIndex:
    """A CRL of the issuing CA whose issuing distribution point names ``url``, validated."""
    idp = x509.IssuingDistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)], relative_name=None,
        only_contains_user_certs=user_only, only_contains_ca_certs=False,
        only_some_reasons=None, indirect_crl=False, only_contains_attribute_certs=False)
    return validate_crl(pki.issuing.crl([], extensions=[(idp, True)]), pki.issuing.certificate,
                        NOW)


def test_an_idp_scope_must_name_the_certificates_distribution_point(pki: Pki) -> None:
    url = "http://crl.example/issuing.crl"
    index = _scoped_to(pki, url, user_only=True)
    fetched = "http://mirror.example/issuing.crl"  # CRL_URL: the certificate's own CDP counts
    assert covers(index, pki.issuing.issue("in", crl_url=url).certificate, fetched)
    assert not covers(index, pki.issuing.issue("out", crl_url=url + "x").certificate, url)
    # A certificate that names no distribution point: the URL fetched (CRL_URL) must match.
    assert not covers(index, pki.client.certificate, fetched)
    assert covers(index, pki.client.certificate, url)


@pytest.mark.parametrize(("in_idp", "in_certificate", "same"), [
    ("http://crl.example/issuing.crl", "HTTP://CRL.Example/issuing.crl", True),
    ("https://CRL.example:8443/a%2fb.crl", "hTTps://crl.EXAMPLE:8443/a%2Fb.crl", True),
    ("http://[2001:DB8::1]/x.crl", "http://[2001:db8::1]/x.crl", True),
    ("http://crl.example/Issuing.crl", "http://crl.example/issuing.crl", False),  # path: exact
    ("http://crl.example/x.crl?Y", "http://crl.example/x.crl?y", False),
    ("http://crl.example/x.crl", "https://crl.example/x.crl", False),
])
def test_an_idp_uri_matches_with_scheme_and_host_case_insensitive(
        pki: Pki, in_idp: str, in_certificate: str, same: bool) -> None:
    # SPEC §2a, RFC 3986 §6.2.2.1: scheme, host and percent-escapes are case-insensitive.
    index = _scoped_to(pki, in_idp, user_only=False)
    leaf = pki.issuing.issue("idp-case", crl_url=in_certificate).certificate
    assert covers(index, leaf, in_certificate) is same
    assert (normalise_uri(in_idp) == normalise_uri(in_certificate)) is same


@pytest.mark.parametrize("url", [
    "http://h/a\r\nX-Injected: 1", "http://h/a b", "http://user:pw@h/a", "ftp://h/a",
    "http:///nohost", "http://h:99999/",
])
def test_a_url_that_cannot_be_sent_safely_is_refused(url: str) -> None:
    with pytest.raises(FetchError):
        _Target.parse(url)


def test_the_request_line_and_host_header() -> None:
    target = _Target.parse("http://[::1]:8080/ocsp?x=1")
    request = target.request("POST", ("application/ocsp-request", b"\x30\x00"), "*/*")
    assert request.startswith(b"POST /ocsp?x=1 HTTP/1.1\r\nHost: [::1]:8080\r\n")
    assert request.endswith(b"Content-Length: 2\r\n\r\n\x30\x00")
    assert _Target.parse("https://ca.example/crl").host_header() == "ca.example"


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/metadata/instance", "http://168.63.129.16/machine",
    "http://[fe80::1]/crl", "http://[::ffff:169.254.169.254]/crl",
])
def test_a_certificate_url_into_the_default_blocked_networks_is_never_contacted(url: str) -> None:
    # tests/unit opens no socket: the refusal comes before any connection is made.
    fetcher = NetFetcher()
    with pytest.raises(FetchError, match="blocked network"):
        fetcher.get(url, timeout=1.0, max_bytes=100, from_certificate=True)
    assert fetcher.slots.in_flight == 0


# --- any bytes a CRL server sends end in a verdict (issue 18, item 1) ------------------------


def _verdict(check: Callable[..., object], *args: object) -> str:
    """"usable", or the rule CrlInvalid names; any other exception fails the test."""
    try:
        check(*args)
    except CrlInvalid as exc:
        return str(exc)
    return "usable"


def test_the_vectors_are_those_of_the_locked_cryptography() -> None:
    assert cryptography_vectors.__version__ == cryptography.__version__


def test_every_crl_of_cryptography_vectors_ends_in_a_verdict(pki: Pki) -> None:
    crls = vector_crls()
    assert len(crls) >= 200
    issuers = certificates_by_subject()
    signed: dict[str, str] = {}
    contents: dict[str, str] = {}
    for vector in crls:
        try:
            parsed = read_crl(vector.body)
            named = issuers.get(parsed.issuer, ())
            this_update = parsed.last_update_utc
        except (CrlInvalid, ValueError) as exc:  # the test's own reads; validate_crl reads again
            parsed, named, this_update = None, (), NOW
            assert isinstance(exc, CrlInvalid) or _verdict(
                validate_crl, vector.body, pki.issuing.certificate, NOW) != "usable"
        # The whole validation, against the real issuer where the package has it (PKITS) ...
        issuer = named[0] if named else pki.issuing.certificate
        signed[vector.name] = _verdict(validate_crl, vector.body, issuer, NOW, named)
        # ... and every check after the signature, at the CRL's own time, whoever signed it.
        if parsed is not None:
            contents[vector.name] = _verdict(index_crl, parsed, this_update)
    pkits = "x509/PKITS_data/crls/"
    assert signed[pkits + "GoodCACRL.crl"] == "usable"
    assert "does not verify" in signed[pkits + "BadCRLSignatureCACRL.crl"]
    assert "unrecognised critical extension" in signed[pkits + "UnknownCRLExtensionCACRL.crl"]
    assert "is stale" in signed[pkits + "OldCRLnextUpdateCACRL.crl"]
    assert "not accepted" in signed[pkits + "DSACACRL.crl"]
    # The PKITS CRLs verify with their real issuers, so most got through every check.
    assert sum(verdict == "usable" for verdict in signed.values()) >= 100
    custom = "x509/custom/"
    assert "InvalidVersion" in signed[custom + "crl_bad_version.pem"]
    assert "DuplicateExtension" in contents[custom + "crl_dup_entry_ext.pem"]
    assert "malformed" in contents[custom + "crl_inval_cert_issuer_entry_ext.pem"]
    assert "malformed" in contents[custom + "crl_unsupported_reason.pem"]
    assert "delta CRL" in contents[custom + "crl_delta_crl_indicator.pem"]
    assert contents[custom + "crl_almost_10k.pem"] == "usable"


@pytest.mark.parametrize("case", list(crlforge.OPENSSL_DEFECTS))
def test_the_defects_of_openssls_crl_test_files_are_each_refused_by_name(
        pki: Pki, case: str) -> None:
    make, reason = crlforge.OPENSSL_DEFECTS[case]
    with pytest.raises(CrlInvalid, match=reason):
        validate_crl(make(pki, 77), pki.issuing.certificate, NOW)


def test_a_serial_listed_twice_is_revoked(pki: Pki) -> None:
    index = validate_crl(crlforge.duplicate_serial(pki.issuing, 77), pki.issuing.certificate, NOW)
    assert index.reason(77)[0]
