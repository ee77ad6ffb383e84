"""CRL revocation (SPEC §2a) against real CRLs served over HTTP on 127.0.0.1: one test per rule."""

from __future__ import annotations

import gc
import ipaddress
import logging
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509

from bench.crl import big_crl
from certsas.clientcert import PresentedCertificate
from certsas.config import RevocationMode
from certsas.crl.checker import CrlChecker
from certsas.crl.validation import validate_crl
from certsas.devtools.crl_server import CrlServer
from certsas.devtools.pki import DevPki, Issued
from certsas.errors import CertificateRevoked, RevocationStatusUnknown, RevocationUnavailable
from certsas.netfetch import NetFetcher
from certsas.revocation import RevocationOutcome, RevocationPolicy, Status, Verdict
from certsas.verification import VerifiedCertificate
from tests.support import crlforge
from tests.support.clock import ManualClock
from tests.support.openssl_ca import OpensslCa
from tests.support.pki import Pki, verified_under
from tests.support.vectors import certificates_by_subject, vector_crls

UNKNOWN_CRITICAL = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"),
                                              b"\x05\x00")
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
MakeChecker = Callable[..., CrlChecker]


@pytest.fixture
def server() -> Iterator[CrlServer]:
    with CrlServer() as crl_server:
        yield crl_server


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def checker(clock: ManualClock) -> MakeChecker:
    def make(url: str | None = None, *, timeout: float = 2.0, max_bytes: int = 1 << 20,
             fetcher: NetFetcher | None = None) -> CrlChecker:
        return CrlChecker(crl_url=url, timeout_seconds=timeout, max_bytes=max_bytes,
                          fetcher=fetcher or NetFetcher(blocked_networks=()), clock=clock)
    return make


def client(pki: Pki, server: CrlServer, name: str = "crl-client") -> Issued:
    return pki.issuing.issue(name, crl_url=server.url())


def require(*sources: CrlChecker | object) -> RevocationPolicy:
    return RevocationPolicy(RevocationMode.REQUIRE, sources)  # type: ignore[arg-type]


# --- good, revoked, hold ------------------------------------------------------------------


def test_a_certificate_not_listed_is_good(pki: Pki, server: CrlServer,
                                          checker: MakeChecker) -> None:
    leaf = client(pki, server)
    server.publish("/ca.crl", pki.issuing.crl([(leaf.certificate.serial_number + 1, None)]))
    assert require(checker()).check(pki.verified(leaf)) is RevocationOutcome.CRL_GOOD
    assert server.request_count == 1


@pytest.mark.parametrize("reason", [x509.ReasonFlags.key_compromise,
                                    x509.ReasonFlags.certificate_hold, None])
def test_a_listed_certificate_is_revoked_hold_included(
        pki: Pki, server: CrlServer, checker: MakeChecker,
        reason: x509.ReasonFlags | None) -> None:
    leaf = client(pki, server)
    server.publish("/ca.crl", pki.issuing.crl([(leaf.certificate.serial_number, reason)]))
    for mode in (RevocationMode.REQUIRE, RevocationMode.SOFT_FAIL):
        with pytest.raises(CertificateRevoked) as caught:
            RevocationPolicy(mode, [checker()]).check(pki.verified(leaf))
        assert caught.value.revocation == "crl:revoked"
        assert f"{leaf.certificate.serial_number:X}" in caught.value.detail
        if reason is not None:
            assert reason.value in caught.value.detail


# --- a CRL that must not be used ----------------------------------------------------------


def _stale(pki: Pki, serial: int) -> bytes:
    start = datetime.now(UTC) - timedelta(days=3)
    return pki.issuing.crl([], this_update=start, next_update=start + timedelta(days=1))


def _future(pki: Pki, serial: int) -> bytes:
    start = datetime.now(UTC) + timedelta(hours=1)
    return pki.issuing.crl([], this_update=start, next_update=start + timedelta(days=1))


def _idp(**flags: object) -> Callable[[Pki, int], bytes]:
    values = {"full_name": None, "relative_name": None, "only_contains_user_certs": False,
              "only_contains_ca_certs": False, "only_some_reasons": None, "indirect_crl": False,
              "only_contains_attribute_certs": False, **flags}
    idp = x509.IssuingDistributionPoint(**values)  # type: ignore[arg-type]
    return lambda pki, serial: pki.issuing.crl([], extensions=[(idp, True)])


INVALID: dict[str, tuple[Callable[[Pki, int], bytes], str]] = {
    "signed by another key": (lambda pki, s: pki.issuing.crl([], signing_key=pki.stranger.key),
                              "does not verify"),
    "another CA's CRL": (lambda pki, s: pki.stranger.crl([]), "issuer is not"),
    "stale": (_stale, "is stale"),
    "future thisUpdate": (_future, "in the future"),
    "critical extension on the list": (
        lambda pki, s: pki.issuing.crl([], extensions=[(UNKNOWN_CRITICAL, True)]),
        "unrecognised critical extension"),
    "critical extension on an entry": (
        lambda pki, s: pki.issuing.crl([(s + 7, None)], entry_extensions=[(UNKNOWN_CRITICAL, True)]),
        "entry has an unrecognised critical extension"),
    "IDP: CA certificates only": (_idp(only_contains_ca_certs=True), "CA certificates only"),
    "IDP: some reasons": (_idp(only_some_reasons=frozenset({x509.ReasonFlags.key_compromise})),
                          "only some revocation reasons"),
    "IDP: indirect": (_idp(indirect_crl=True), "indirect"),
    "IDP: another partition": (
        _idp(full_name=[x509.UniformResourceIdentifier("http://127.0.0.1:1/other.crl")]),
        "partition for other certificates"),
    "delta CRL": (lambda pki, s: pki.issuing.crl([], extensions=[(x509.DeltaCRLIndicator(1), True)]),
                  "delta CRL"),
    "not a CRL": (lambda pki, s: b"\x30\x03abc", "does not parse"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_an_unusable_crl_is_unavailable_and_soft_fail_allows_it(
        pki: Pki, server: CrlServer, checker: MakeChecker, case: str) -> None:
    make, reason = INVALID[case]
    leaf = client(pki, server)
    server.publish("/ca.crl", make(pki, leaf.certificate.serial_number))
    with pytest.raises(RevocationUnavailable) as caught:
        require(checker()).check(pki.verified(leaf))
    assert reason in caught.value.detail
    assert caught.value.revocation == "crl:unavailable"
    soft = RevocationPolicy(RevocationMode.SOFT_FAIL, [checker()])
    assert soft.check(pki.verified(leaf)) is RevocationOutcome.SOFT_FAILED


def test_an_idp_naming_the_certificates_own_distribution_point_is_used(
        pki: Pki, server: CrlServer, checker: MakeChecker) -> None:
    leaf = client(pki, server)
    idp = _idp(full_name=[x509.UniformResourceIdentifier(server.url())],
               only_contains_user_certs=True)
    server.publish("/ca.crl", idp(pki, 1))
    assert require(checker()).check(pki.verified(leaf)) is RevocationOutcome.CRL_GOOD


def test_oversize_server_down_and_redirect(pki: Pki, server: CrlServer,
                                           checker: MakeChecker) -> None:
    leaf = client(pki, server)
    big = pki.issuing.crl([(n, None) for n in range(1, 200)])
    server.publish("/ca.crl", big)
    with pytest.raises(RevocationUnavailable, match=f"larger than {len(big) - 1} bytes"):
        require(checker(max_bytes=len(big) - 1)).check(pki.verified(leaf))
    assert require(checker(max_bytes=len(big))).check(pki.verified(leaf)) \
        is RevocationOutcome.CRL_GOOD
    with CrlServer() as elsewhere:
        elsewhere.publish("/ca.crl", big)
        server.redirect_to = elsewhere.url()
        with pytest.raises(RevocationUnavailable, match="redirects are not followed"):
            require(checker()).check(pki.verified(leaf))
        assert elsewhere.request_count == 0
    server.stop()
    with pytest.raises(RevocationUnavailable, match="unreachable"):
        require(checker()).check(pki.verified(leaf))


def test_no_distribution_point_is_unknown_and_crl_url_overrides(
        pki: Pki, server: CrlServer, checker: MakeChecker) -> None:
    bare = pki.issuing.issue("no-cdp")
    with pytest.raises(RevocationStatusUnknown, match="no http\\(s\\) CRL distribution point"):
        require(checker()).check(pki.verified(bare))
    server.publish("/override.crl", pki.issuing.crl([(bare.certificate.serial_number, None)]))
    with pytest.raises(CertificateRevoked):
        require(checker(server.url("/override.crl"))).check(pki.verified(bare))


def test_ldap_distribution_points_are_skipped_for_the_first_http_one(
        pki: Pki, server: CrlServer, checker: MakeChecker) -> None:
    points = [x509.DistributionPoint([x509.UniformResourceIdentifier("ldap://ldap.example/cn=x")],
                                     None, None, None),
              x509.DistributionPoint([x509.UniformResourceIdentifier(server.url())], None, None,
                                     None)]
    leaf = pki.issuing.issue("two-cdps", extra_extensions=[x509.CRLDistributionPoints(points)])
    server.publish("/ca.crl", pki.issuing.crl([(leaf.certificate.serial_number, None)]))
    with pytest.raises(CertificateRevoked):
        require(checker()).check(pki.verified(leaf))


def test_a_blocked_network_is_never_contacted_but_crl_url_is_exempt(
        pki: Pki, server: CrlServer, checker: MakeChecker) -> None:
    leaf = client(pki, server)
    server.publish("/ca.crl", pki.issuing.crl([]))
    blocked = NetFetcher(blocked_networks=LOOPBACK)
    with pytest.raises(RevocationUnavailable, match="blocked network"):
        require(checker(fetcher=blocked)).check(pki.verified(leaf))
    assert server.request_count == 0
    exempt = checker(server.url(), fetcher=blocked)
    assert require(exempt).check(pki.verified(leaf)) is RevocationOutcome.CRL_GOOD
    assert server.request_count == 1


# --- CRLs made by openssl ca -gencrl -------------------------------------------------------


def test_crls_made_by_openssl_ca(pki: Pki, server: CrlServer, checker: MakeChecker,
                                 tmp_path: Path) -> None:
    good, revoked, held = (client(pki, server, name) for name in ("o-good", "o-revoked", "o-held"))
    ca = OpensslCa(pki.issuing, tmp_path / "ca")
    ca.revoke(revoked.certificate, "keyCompromise")
    ca.revoke(held.certificate, "certificateHold")
    server.publish("/ca.crl", ca.gencrl())
    source = checker()
    assert require(source).check(pki.verified(good)) is RevocationOutcome.CRL_GOOD
    for issued in (revoked, held):
        with pytest.raises(CertificateRevoked):
            require(source).check(pki.verified(issued))
    assert server.request_count == 1
    server.publish("/ca.crl", ca.gencrl(md="sha1"))
    with pytest.raises(RevocationUnavailable, match=r"signature algorithm .* not accepted"):
        require(checker()).check(pki.verified(good))


# --- cache, single flight, background refresh -------------------------------------------------


def test_cache_counts_until_next_update(pki: Pki, server: CrlServer, checker: MakeChecker,
                                        clock: ManualClock) -> None:
    one, two = client(pki, server, "c-one"), client(pki, server, "c-two")
    start = clock()
    server.publish("/ca.crl", pki.issuing.crl([], this_update=start,
                                              next_update=start + timedelta(hours=1)))
    source = checker()
    for _ in range(5):
        for issued in (one, two):
            assert source.verdict(pki.verified(issued)).status is Status.GOOD
    assert (source.downloads, server.request_count) == (1, 1)
    clock.advance(3600 + 5 * 60 + 1)  # nextUpdate and the 5 minutes' skew have passed
    server.publish("/ca.crl", pki.issuing.crl([(one.certificate.serial_number, None)],
                                              this_update=clock(),
                                              next_update=clock() + timedelta(hours=1)))
    assert source.verdict(pki.verified(one)).status is Status.REVOKED
    assert (source.downloads, server.request_count) == (2, 2)


def test_cold_cache_single_flight(pki: Pki, server: CrlServer, checker: MakeChecker) -> None:
    leaf = client(pki, server)
    server.publish("/ca.crl", pki.issuing.crl([]))
    server.delay_seconds = 0.3
    source = checker()
    barrier = threading.Barrier(16)
    results: list[Status] = []

    def ask() -> None:
        barrier.wait()
        results.append(source.verdict(pki.verified(leaf)).status)

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [Status.GOOD] * 16
    assert (source.downloads, server.request_count) == (1, 1)


def test_background_refresh_serves_from_cache_while_one_download_runs(
        pki: Pki, server: CrlServer, checker: MakeChecker, clock: ManualClock) -> None:
    leaf = client(pki, server)
    start = clock()
    server.publish("/ca.crl", pki.issuing.crl([], this_update=start,
                                              next_update=start + timedelta(hours=1)))
    source = checker()
    assert source.verdict(pki.verified(leaf)).status is Status.GOOD
    # The CA revokes the certificate; 50 of the CRL's 60 minutes pass.
    server.publish("/ca.crl", pki.issuing.crl([(leaf.certificate.serial_number, None)],
                                              this_update=start + timedelta(minutes=49)))
    server.delay_seconds = 0.5
    clock.advance(50 * 60)
    started = time.monotonic()
    during = [source.verdict(pki.verified(leaf)).status for _ in range(10)]
    assert time.monotonic() - started < 0.3  # nobody waited for the download
    assert during == [Status.GOOD] * 10  # the cached CRL still answers
    assert source.wait_for_refreshes(5.0)
    assert (source.downloads, server.request_count) == (2, 2)  # exactly one refresh
    assert source.verdict(pki.verified(leaf)).status is Status.REVOKED


def test_a_failed_refresh_keeps_the_cached_crl_until_next_update_and_is_logged(
        pki: Pki, server: CrlServer, checker: MakeChecker, clock: ManualClock,
        caplog: pytest.LogCaptureFixture) -> None:
    leaf = client(pki, server)
    start = clock()
    server.publish("/ca.crl", pki.issuing.crl([], this_update=start,
                                              next_update=start + timedelta(hours=1)))
    source = checker()
    assert source.verdict(pki.verified(leaf)).status is Status.GOOD
    server.status = 500
    clock.advance(50 * 60)
    with caplog.at_level(logging.WARNING, logger="certsas.crl"):
        assert source.verdict(pki.verified(leaf)).status is Status.GOOD
        assert source.wait_for_refreshes(5.0)
    assert any("CRL refresh failed" in r.getMessage() and "HTTP 500" in r.getMessage()
               for r in caplog.records)
    assert source.verdict(pki.verified(leaf)).status is Status.GOOD
    clock.advance(16 * 60)  # past nextUpdate and its skew: the cached CRL is no longer used
    assert source.verdict(pki.verified(leaf)).status is Status.UNAVAILABLE


# --- the dev PKI ---------------------------------------------------------------------------------


def test_dev_pki_writes_a_crl_that_revokes_the_revoked_client(server: CrlServer,
                                                              checker: MakeChecker) -> None:
    dev = DevPki.create("http://127.0.0.1:1/ocsp", server.url("/issuing-ca.crl"))
    server.publish("/issuing-ca.crl", dev.crl)

    def dev_verified(issued: Issued) -> VerifiedCertificate:
        return verified_under(issued, dev.issuing, dev.root)

    source = checker()
    assert require(source).check(dev_verified(dev.client)) is RevocationOutcome.CRL_GOOD
    with pytest.raises(CertificateRevoked, match="keyCompromise"):
        require(source).check(dev_verified(dev.revoked_client))
    assert "issuing-ca.crl" in dev.files()


# --- bytes cryptography cannot read (issue 18, item 1) -----------------------------------------


@pytest.mark.parametrize("case", list(crlforge.OPENSSL_DEFECTS))
def test_any_bytes_from_a_crl_server_end_unavailable_and_held(
        pki: Pki, server: CrlServer, checker: MakeChecker, clock: ManualClock, case: str) -> None:
    make, reason = crlforge.OPENSSL_DEFECTS[case]
    leaf = client(pki, server)
    server.publish("/ca.crl", make(pki, leaf.certificate.serial_number))
    source = checker()
    with pytest.raises(RevocationUnavailable, match=reason) as caught:
        require(source).check(pki.verified(leaf))
    assert caught.value.revocation == "crl:unavailable"
    soft = RevocationPolicy(RevocationMode.SOFT_FAIL, [source])
    assert soft.check(pki.verified(leaf)) is RevocationOutcome.SOFT_FAILED
    assert server.request_count == 1  # held like any failed download: not fetched again at once
    clock.advance(6)  # past the 5 seconds' hold: the next request tries again
    assert source.verdict(pki.verified(leaf)).status is Status.UNAVAILABLE
    assert server.request_count == 2


def test_a_serial_listed_twice_is_revoked(pki: Pki, server: CrlServer,
                                          checker: MakeChecker) -> None:
    leaf = client(pki, server)
    server.publish("/ca.crl", crlforge.duplicate_serial(pki.issuing, leaf.certificate.serial_number))
    with pytest.raises(CertificateRevoked):
        require(checker()).check(pki.verified(leaf))


def test_every_crl_of_cryptography_vectors_served_has_a_verdict(
        pki: Pki, server: CrlServer, checker: MakeChecker) -> None:
    leaf = client(pki, server)
    issuers = certificates_by_subject()
    statuses: dict[Status, int] = {}
    for vector in vector_crls():
        server.publish("/ca.crl", vector.body)
        try:
            named = issuers.get(x509.load_der_x509_crl(vector.body).issuer, ())
        except ValueError:
            named = ()
        # The PKITS CA that issued it stands as the leaf's issuer: its signature verifies.
        chain = (leaf.certificate, named[0]) if named else (leaf.certificate,
                                                            pki.issuing.certificate)
        status = checker().verdict(VerifiedCertificate(PresentedCertificate.from_der(leaf.der),
                                                       chain)).status
        statuses[status] = statuses.get(status, 0) + 1
    assert sum(statuses.values()) == len(vector_crls()) == server.request_count
    assert set(statuses) <= {Status.GOOD, Status.REVOKED, Status.UNAVAILABLE}
    assert statuses.get(Status.GOOD, 0) >= 50  # PKITS CRLs, checked all the way through


# --- a CRL never goes back in time (issue 18, item 2) ---------------------------------------


def _rollback_at_refresh(pki: Pki, server: CrlServer, checker: MakeChecker, clock: ManualClock,
                         caplog: pytest.LogCaptureFixture,
                         make: Callable[[list[int], datetime, datetime], bytes]) -> None:
    """The cached CRL revokes the leaf; at the refresh the server serves an older, still
    current CRL that does not: the refresh fails and the leaf stays revoked."""
    leaf = client(pki, server)
    start = clock()
    server.publish("/ca.crl", make([leaf.certificate.serial_number], start,
                                   start + timedelta(hours=1)))
    source = checker()
    assert source.verdict(pki.verified(leaf)).status is Status.REVOKED
    older = make([], start - timedelta(minutes=30), start + timedelta(hours=2))
    server.publish("/ca.crl", older)
    clock.advance(50 * 60)
    with caplog.at_level(logging.WARNING, logger="certsas.crl"):
        assert source.verdict(pki.verified(leaf)).status is Status.REVOKED  # the refresh starts
        assert source.wait_for_refreshes(5.0)
    assert (source.downloads, server.request_count) == (2, 2)
    assert any("CRL refresh failed" in r.getMessage() and "goes back in time" in r.getMessage()
               for r in caplog.records)
    assert source.verdict(pki.verified(leaf)).status is Status.REVOKED
    # Past the cached CRL's nextUpdate the older one is still refused: the cache is cold
    # now, and a download older than the last CRL seen is a failed load.
    clock.advance(11 * 60 + 5 * 60)
    verdict = source.verdict(pki.verified(leaf))
    assert verdict.status is Status.UNAVAILABLE and "goes back in time" in verdict.detail
    assert source.verdict(pki.verified(leaf)).status is Status.UNAVAILABLE
    assert server.request_count == 3  # held like any failed download
    # A newer CRL is taken again.
    clock.advance(6)
    server.publish("/ca.crl", make([], clock(), clock() + timedelta(hours=1)))
    assert source.verdict(pki.verified(leaf)).status is Status.GOOD


def test_a_lower_crl_number_at_refresh_is_a_failed_refresh(
        pki: Pki, server: CrlServer, checker: MakeChecker, clock: ManualClock,
        caplog: pytest.LogCaptureFixture) -> None:
    # The dev CA numbers its CRLs by thisUpdate: the older CRL has the lower number.
    def numbered(serials: list[int], this_update: datetime, next_update: datetime) -> bytes:
        return pki.issuing.crl([(s, None) for s in serials], this_update=this_update,
                               next_update=next_update)
    _rollback_at_refresh(pki, server, checker, clock, caplog, numbered)


def test_without_crl_numbers_an_earlier_this_update_is_a_failed_refresh(
        pki: Pki, server: CrlServer, checker: MakeChecker, clock: ManualClock,
        caplog: pytest.LogCaptureFixture) -> None:
    def unnumbered(serials: list[int], this_update: datetime, next_update: datetime) -> bytes:
        return crlforge.unnumbered(pki.issuing, serials, this_update, next_update)
    _rollback_at_refresh(pki, server, checker, clock, caplog, unnumbered)


def test_a_pem_body_with_two_crls_at_refresh_is_not_used(
        pki: Pki, server: CrlServer, checker: MakeChecker, clock: ManualClock) -> None:
    leaf = client(pki, server)
    start = clock()
    revoking = pki.issuing.crl([(leaf.certificate.serial_number, None)], this_update=start,
                               next_update=start + timedelta(hours=1))
    server.publish("/ca.crl", revoking)
    source = checker()
    assert source.verdict(pki.verified(leaf)).status is Status.REVOKED
    # A newer CRL that does not list the leaf first, the current one second: neither is used.
    newer = pki.issuing.crl([], this_update=start + timedelta(minutes=40))
    server.publish("/ca.crl", crlforge.two_crls_in_one_pem(newer, revoking))
    clock.advance(50 * 60)
    assert source.verdict(pki.verified(leaf)).status is Status.REVOKED
    assert source.wait_for_refreshes(5.0)
    assert source.verdict(pki.verified(leaf)).status is Status.REVOKED
    assert server.request_count == 2


# --- one bound for the whole first wait; the memory cap (issue 18, item 4) ----------------------


def test_the_first_requests_whole_wait_download_and_parse_is_one_bound(
        pki: Pki, server: CrlServer, checker: MakeChecker) -> None:
    leaf = client(pki, server)
    # 200,000 entries: parsing and indexing alone takes longer than the 0.3 s budget here.
    server.publish("/ca.crl", big_crl(pki.issuing, 200_000, leaf.certificate.serial_number + 1))
    source = checker(timeout=0.3, max_bytes=20 * 1024 * 1024)
    barrier = threading.Barrier(8)
    waits: list[tuple[float, Verdict]] = []

    def ask() -> None:
        barrier.wait()
        started = time.monotonic()
        verdict = source.verdict(pki.verified(leaf))
        waits.append((time.monotonic() - started, verdict))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for elapsed, verdict in waits:  # the first request and every waiter: one bound
        assert verdict.status is Status.UNAVAILABLE and "within 0.30s" in verdict.detail
        assert elapsed < 0.3 + 0.5  # slack for a loaded machine, still well short of the parse
    # The load went on: the CRL that landed late serves the next request, no new download.
    assert source.wait_for_refreshes(30.0)
    assert source.verdict(pki.verified(leaf)).status is Status.GOOD
    assert (source.downloads, server.request_count) == (1, 1)


@pytest.mark.parametrize(("max_crls", "max_entries"), [(2, 1000), (32, 25)])
def test_the_cache_keeps_within_its_caps_dropping_the_crl_that_ends_first(
        pki: Pki, server: CrlServer, clock: ManualClock, max_crls: int, max_entries: int) -> None:
    leaves = [pki.issuing.issue(f"cap-{n}", crl_url=server.url(f"/{n}.crl")) for n in range(3)]
    for n, leaf in enumerate(leaves):  # 10 entries each; the first ends first
        server.publish(f"/{n}.crl", pki.issuing.crl(
            [(leaf.certificate.serial_number + k + 1, None) for k in range(10)],
            this_update=clock(), next_update=clock() + timedelta(hours=n + 1)))
    source = CrlChecker(crl_url=None, timeout_seconds=2.0, max_bytes=1 << 20,
                        fetcher=NetFetcher(blocked_networks=()), clock=clock,
                        max_crls=max_crls, max_entries=max_entries)
    for leaf in leaves:
        assert source.verdict(pki.verified(leaf)).status is Status.GOOD
    assert source.cached_crls == 2
    assert server.request_count == 3
    for leaf in leaves[1:]:  # still cached
        assert source.verdict(pki.verified(leaf)).status is Status.GOOD
    assert server.request_count == 3
    assert source.verdict(pki.verified(leaves[0])).status is Status.GOOD  # fetched again
    assert server.request_count == 4


def test_an_index_costs_about_100_bytes_per_entry(pki: Pki) -> None:
    """The figure docs/revocation.md gives (and MAX_ENTRIES assumes): serials of 20 bytes, as
    CAs issue them, measured with tracemalloc on a 100,000-entry CRL."""
    der = big_crl(pki.issuing, 100_000, 2**158 + 1)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        index = validate_crl(der, pki.issuing.certificate, datetime.now(UTC))
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(index.revoked) == 100_000
    assert 60 < retained / 100_000 < 130


# --- IDP URIs compare with scheme and host case-insensitive (issue 18, item 3) ----------------


def test_an_idp_naming_the_distribution_point_in_other_case_covers_it(
        pki: Pki, server: CrlServer, checker: MakeChecker) -> None:
    port = urlsplit(server.url()).port
    leaf = pki.issuing.issue("idp-case", crl_url=f"http://LocalHost:{port}/ca.crl")
    idp = _idp(full_name=[x509.UniformResourceIdentifier(f"HTTP://localhost:{port}/ca.crl")])
    server.publish("/ca.crl", idp(pki, 1))
    assert require(checker()).check(pki.verified(leaf)) is RevocationOutcome.CRL_GOOD
    other_path = _idp(full_name=[x509.UniformResourceIdentifier(f"http://localhost:{port}/CA.crl")])
    server.publish("/ca.crl", other_path(pki, 1))
    with pytest.raises(RevocationUnavailable, match="partition for other certificates"):
        require(checker()).check(pki.verified(leaf))


# --- a URL's query string never appears (issue 18, item 5) -------------------------------------


def test_a_crl_urls_query_string_never_appears_in_a_verdict_or_a_warning(
        pki: Pki, server: CrlServer, checker: MakeChecker,
        caplog: pytest.LogCaptureFixture) -> None:
    leaf = pki.issuing.issue("no-cdp")
    secret_url = server.url("/ca.crl") + "?sv=2024-11-04&sig=Zm9vYmFyc2VjcmV0"
    server.publish("/ca.crl", pki.issuing.crl([]))
    good = checker(secret_url).verdict(pki.verified(leaf))
    assert good.status is Status.GOOD and "?<query hidden>" in good.detail
    server.status = 500
    soft = RevocationPolicy(RevocationMode.SOFT_FAIL, [checker(secret_url)])
    with caplog.at_level(logging.WARNING):
        assert soft.check(pki.verified(leaf)) is RevocationOutcome.SOFT_FAILED
    with pytest.raises(RevocationUnavailable) as caught:
        require(checker(secret_url)).check(pki.verified(leaf))
    shown = [caught.value.detail, caught.value.message, good.detail,
             *(record.getMessage() for record in caplog.records)]
    assert any("HTTP 500" in text for text in shown)
    assert not any("sig=" in text or "Zm9vYmFyc2VjcmV0" in text for text in shown)


# --- unspecified addresses count as loopback (issue 18, item 6) ------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "0", "[::]", "[::ffff:0.0.0.0]"])  # noqa: S104
def test_an_unspecified_address_counts_as_loopback_when_loopback_is_blocked(
        pki: Pki, server: CrlServer, checker: MakeChecker, host: str) -> None:
    port = urlsplit(server.url()).port
    leaf = pki.issuing.issue("unspecified", crl_url=f"http://{host}:{port}/ca.crl")
    server.publish("/ca.crl", pki.issuing.crl([]))
    for blocked in (LOOPBACK, (ipaddress.ip_network("::1/128"),)):
        verdict = checker(fetcher=NetFetcher(blocked_networks=blocked)).verdict(pki.verified(leaf))
        assert verdict.status is Status.UNAVAILABLE and "blocked network" in verdict.detail
    assert server.request_count == 0


def test_an_unspecified_address_does_reach_this_machine(
        pki: Pki, server: CrlServer, checker: MakeChecker) -> None:
    # Why it must count as loopback: 0.0.0.0 reaches the server listening on 127.0.0.1.
    port = urlsplit(server.url()).port
    leaf = pki.issuing.issue("unspecified", crl_url=f"http://0.0.0.0:{port}/ca.crl")
    server.publish("/ca.crl", pki.issuing.crl([]))
    assert checker().verdict(pki.verified(leaf)).status is Status.GOOD
    assert server.request_count == 1
