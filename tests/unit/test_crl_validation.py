"""CRL validation and index (pure), and how a fetch target is read from a URL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from certsas.crl.validation import (
    CrlInvalid,
    covers,
    distribution_point_url,
    validate_crl,
)
from certsas.netfetch import FetchError, NetFetcher, _Target
from tests.support.pki import Pki

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


def test_an_idp_scope_must_name_the_certificates_distribution_point(pki: Pki) -> None:
    url = "http://crl.example/issuing.crl"
    idp = x509.IssuingDistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)], relative_name=None,
        only_contains_user_certs=True, only_contains_ca_certs=False, only_some_reasons=None,
        indirect_crl=False, only_contains_attribute_certs=False)
    index = validate_crl(pki.issuing.crl([], extensions=[(idp, True)]),
                         pki.issuing.certificate, NOW)
    assert covers(index, pki.issuing.issue("in", crl_url=url).certificate)
    assert not covers(index, pki.issuing.issue("out", crl_url=url + "x").certificate)
    assert not covers(index, pki.client.certificate)


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
