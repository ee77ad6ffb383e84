"""OCSP and CRL together (SPEC §2a), the fetch's wall-clock bound and its cap on fetches in flight."""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Iterator

import pytest

from certsas.config import RevocationMode
from certsas.crl.checker import CrlChecker
from certsas.devtools.crl_server import CrlServer
from certsas.devtools.ocsp_responder import OcspResponder
from certsas.devtools.pki import Issued
from certsas.errors import CertificateRevoked, RevocationStatusUnknown, RevocationUnavailable
from certsas.netfetch import FetchError, FetchSlots, NetFetcher
from certsas.ocsp.checker import OcspChecker
from certsas.ocsp.fetch import HttpOcspFetcher
from certsas.revocation import RevocationOutcome, RevocationPolicy, RevocationSource, Status
from tests.support import crlforge
from tests.support.azurite import Azurite
from tests.support.clock import ManualClock
from tests.support.drip import DripServer
from tests.support.pki import OcspPki, Pki
from tests.support.stack import app_env, build_stack, forwarded

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


@pytest.fixture
def crl_server() -> Iterator[CrlServer]:
    with CrlServer() as server:
        yield server


def both(ocsp_pki: OcspPki, crl_server: CrlServer, name: str) -> Issued:
    """A certificate naming the test OCSP responder and the test CRL server."""
    return ocsp_pki.issuing.issue(name, ocsp_url=ocsp_pki.url, crl_url=crl_server.url())


def sources(order: str, clock: ManualClock) -> list[RevocationSource]:
    made: dict[str, RevocationSource] = {
        "ocsp": OcspChecker(responder_url=None, timeout_seconds=1.0, cache_max_seconds=0,
                            clock=clock),
        "crl": CrlChecker(crl_url=None, timeout_seconds=1.0, max_bytes=1 << 20,
                          fetcher=NetFetcher(blocked_networks=()), clock=clock),
    }
    return [made[name] for name in order.split(",")]


def test_the_first_definitive_answer_ends_it(
        ocsp_pki: OcspPki, ocsp_responder: OcspResponder, crl_server: CrlServer,
        ocsp_clock: ManualClock) -> None:
    leaf = both(ocsp_pki, crl_server, "both-good")
    crl_server.publish("/ca.crl", ocsp_pki.issuing.crl([]))
    ocsp_responder.known = None  # every serial of the CA is good
    policy = RevocationPolicy(RevocationMode.REQUIRE, sources("ocsp,crl", ocsp_clock))
    assert policy.check(ocsp_pki.verified(leaf)) is RevocationOutcome.OCSP_GOOD
    assert (ocsp_responder.request_count, crl_server.request_count) == (1, 0)
    policy = RevocationPolicy(RevocationMode.REQUIRE, sources("crl,ocsp", ocsp_clock))
    assert policy.check(ocsp_pki.verified(leaf)) is RevocationOutcome.CRL_GOOD
    assert (ocsp_responder.request_count, crl_server.request_count) == (1, 1)


def test_fallback_both_ways(ocsp_pki: OcspPki, ocsp_responder: OcspResponder,
                            crl_server: CrlServer, ocsp_clock: ManualClock) -> None:
    leaf = both(ocsp_pki, crl_server, "fallback")
    crl_server.publish("/ca.crl", ocsp_pki.issuing.crl([(leaf.certificate.serial_number, None)]))
    # OCSP first: the responder does not know this serial (unknown), the CRL says revoked.
    ocsp_responder.known = {ocsp_pki.good.certificate.serial_number}
    with pytest.raises(CertificateRevoked) as caught:
        RevocationPolicy(RevocationMode.SOFT_FAIL, sources("ocsp,crl", ocsp_clock)).check(
            ocsp_pki.verified(leaf))
    assert caught.value.revocation == "crl:revoked"
    # CRL first: the CRL server is down, OCSP answers.
    crl_server.stop()
    ocsp_responder.known = None
    policy = RevocationPolicy(RevocationMode.REQUIRE, sources("crl,ocsp", ocsp_clock))
    assert policy.check(ocsp_pki.verified(leaf)) is RevocationOutcome.OCSP_GOOD


def test_nothing_definitive(ocsp_pki: OcspPki, ocsp_responder: OcspResponder,
                            crl_server: CrlServer, ocsp_clock: ManualClock,
                            caplog: pytest.LogCaptureFixture) -> None:
    # OCSP unknown, no distribution point: nothing failed, so unknown.
    ocsp_responder.known = set()
    with pytest.raises(RevocationStatusUnknown) as unknown:
        RevocationPolicy(RevocationMode.REQUIRE, sources("ocsp,crl", ocsp_clock)).check(
            ocsp_pki.verified(ocsp_pki.unknown))
    assert unknown.value.revocation == "ocsp:unknown,crl:unknown"
    # OCSP unknown, the CRL server down: one source failed, so unavailable.
    leaf = both(ocsp_pki, crl_server, "nothing")
    crl_server.stop()
    with pytest.raises(RevocationUnavailable) as unavailable:
        RevocationPolicy(RevocationMode.REQUIRE, sources("ocsp,crl", ocsp_clock)).check(
            ocsp_pki.verified(leaf))
    assert unavailable.value.revocation == "ocsp:unknown,crl:unavailable"
    soft = RevocationPolicy(RevocationMode.SOFT_FAIL, sources("ocsp,crl", ocsp_clock))
    with caplog.at_level(logging.WARNING, logger="certsas.revocation"):
        assert soft.check(ocsp_pki.verified(leaf)) is RevocationOutcome.SOFT_FAILED
    assert any("revocation_unavailable" in record.getMessage() for record in caplog.records)


# --- through the function: the decision line and the audit record say who answered ----------


def test_decision_line_and_audit_record_name_the_source(
        monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki, ocsp_pki: OcspPki,
        fresh_tables: tuple[str, str], crl_server: CrlServer,
        caplog: pytest.LogCaptureFixture) -> None:
    good, revoked = (pki.issuing.issue(name, crl_url=crl_server.url())
                     for name in ("fn-good", "fn-revoked"))
    crl_server.publish("/ca.crl", pki.issuing.crl([(revoked.certificate.serial_number, None)]))
    env = app_env(azurite, pki.trust_bundle, fresh_tables, REVOCATION_MODE="require",
                  REVOCATION_SOURCES="crl")
    stack = build_stack(monkeypatch, env, azurite.connection_string)
    stack.register(good)
    stack.register(revoked)
    with caplog.at_level(logging.INFO, logger="certsas.audit"):
        assert stack.call(forwarded(good)).status == 200
        answer = stack.call(forwarded(revoked))
    assert (answer.status, answer.error) == (403, "certificate_revoked")
    # The start-up line carries fields too (certsas.runtime): only the decision lines.
    decisions = [record.certsas for record in caplog.records
                 if record.name == "certsas.audit" and hasattr(record, "certsas")]
    assert [d.get("revocation") for d in decisions] == ["crl:good", "crl:revoked"]
    [record] = stack.audit_records()
    assert record["Revocation"] == "crl:good"


# --- the wall-clock budget against a peer that drips bytes (issue 11, item 1) ----------------


@pytest.mark.parametrize("mode", ["headers", "chunked"])
def test_a_dripping_ocsp_responder_is_503_within_the_budget_through_the_function(
        monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki, ocsp_pki: OcspPki,
        fresh_tables: tuple[str, str], mode: str) -> None:
    with DripServer(mode) as drip:
        env = app_env(azurite, pki.trust_bundle, fresh_tables, REVOCATION_MODE="require",
                      REVOCATION_SOURCES="ocsp", OCSP_RESPONDER_URL=drip.url,
                      OCSP_TIMEOUT_SECONDS="1")
        stack = build_stack(monkeypatch, env, azurite.connection_string)
        stack.register(ocsp_pki.good)
        started = time.monotonic()
        answer = stack.call(forwarded(ocsp_pki.good))
        elapsed = time.monotonic() - started
    assert (answer.status, answer.error) == (503, "revocation_unavailable")
    assert elapsed < 1.0 + 1.0
    assert drip.connections >= 1


@pytest.mark.parametrize("mode", ["headers", "chunked"])
def test_a_dripping_crl_server_is_cut_at_the_budget(pki: Pki, mode: str) -> None:
    with DripServer(mode) as drip:
        leaf = pki.issuing.issue("drip", crl_url=drip.url)
        source = CrlChecker(crl_url=None, timeout_seconds=1.0, max_bytes=1 << 20,
                            fetcher=NetFetcher(blocked_networks=()))
        started = time.monotonic()
        verdict = source.verdict(pki.verified(leaf))
        elapsed = time.monotonic() - started
        # The request gives up at its budget; the download it waited for is cut there too.
        assert verdict.status is Status.UNAVAILABLE and "within 1.00s" in verdict.detail
        assert elapsed < 1.0 + 1.0
        assert source.wait_for_refreshes(1.0)
        held = source.verdict(pki.verified(leaf))
    assert "no answer within 1.00s" in held.detail
    assert drip.connections == 1  # the failure is held: no second download


def test_fetches_in_flight_are_capped(crl_server: CrlServer) -> None:
    crl_server.publish("/ca.crl", b"x" * 10)
    crl_server.delay_seconds = 1.0
    fetcher = NetFetcher(blocked_networks=(), slots=FetchSlots(2))
    results: list[str] = []

    def slow() -> None:
        fetcher.get(crl_server.url(), timeout=3.0, max_bytes=100, from_certificate=True)
        results.append("done")

    holders = [threading.Thread(target=slow) for _ in range(2)]
    for thread in holders:
        thread.start()
    while fetcher.slots.in_flight < 2:
        time.sleep(0.01)
    started = time.monotonic()
    with pytest.raises(FetchError, match="no free fetch slot"):
        fetcher.get(crl_server.url(), timeout=0.3, max_bytes=100, from_certificate=True)
    assert 0.25 < time.monotonic() - started < 0.8
    for thread in holders:
        thread.join()
    assert results == ["done", "done"]
    assert crl_server.request_count == 2  # the third never reached the server
    assert fetcher.slots.in_flight == 0


def test_an_aia_url_into_a_blocked_network_is_never_contacted_but_the_override_is(
        ocsp_pki: OcspPki, ocsp_responder: OcspResponder, ocsp_clock: ManualClock) -> None:
    blocked = HttpOcspFetcher(NetFetcher(blocked_networks=LOOPBACK))
    from_aia = OcspChecker(responder_url=None, timeout_seconds=1.0, cache_max_seconds=0,
                           fetcher=blocked, clock=ocsp_clock)
    verdict = from_aia.verdict(ocsp_pki.verified(ocsp_pki.good))
    assert verdict.status is Status.UNAVAILABLE and "blocked network" in verdict.detail
    assert ocsp_responder.request_count == 0
    override = OcspChecker(responder_url=ocsp_responder.url, timeout_seconds=1.0,
                           cache_max_seconds=0, fetcher=blocked, clock=ocsp_clock)
    assert override.verdict(ocsp_pki.verified(ocsp_pki.good)).status is Status.GOOD
    assert ocsp_responder.request_count == 1


def test_an_ocsp_responder_urls_query_string_never_appears(
        ocsp_pki: OcspPki, ocsp_responder: OcspResponder, ocsp_clock: ManualClock,
        caplog: pytest.LogCaptureFixture) -> None:
    secret = "?sv=2024-11-04&sig=Zm9vYmFyc2VjcmV0"
    ocsp_responder.stop()  # down: the verdict and the soft-fail warning name the URL
    source = OcspChecker(responder_url=ocsp_responder.url + secret, timeout_seconds=0.5,
                         cache_max_seconds=0, clock=ocsp_clock)
    verdict = source.verdict(ocsp_pki.verified(ocsp_pki.good))
    assert verdict.status is Status.UNAVAILABLE and "?<query hidden>" in verdict.detail
    with caplog.at_level(logging.WARNING):
        RevocationPolicy(RevocationMode.SOFT_FAIL, [source]).check(
            ocsp_pki.verified(ocsp_pki.good))
    shown = [verdict.detail, *(record.getMessage() for record in caplog.records)]
    assert any("revocation soft-fail" in text for text in shown)
    assert not any("sig=" in text or "Zm9vYmFyc2VjcmV0" in text for text in shown)


@pytest.mark.parametrize(("mode", "status", "error"), [("require", 503, "revocation_unavailable"),
                                                       ("soft-fail", 200, None)])
def test_a_crl_cryptography_cannot_read_is_never_a_500_through_the_function(
        monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki, fresh_tables: tuple[str, str],
        crl_server: CrlServer, mode: str, status: int, error: str | None) -> None:
    leaf = pki.issuing.issue(f"fn-dup-{mode}", crl_url=crl_server.url())
    crl_server.publish("/ca.crl", crlforge.duplicate_entry_extension(
        pki.issuing, leaf.certificate.serial_number))  # cryptography: DuplicateExtension
    env = app_env(azurite, pki.trust_bundle, fresh_tables, REVOCATION_MODE=mode,
                  REVOCATION_SOURCES="crl")
    stack = build_stack(monkeypatch, env, azurite.connection_string)
    stack.register(leaf)
    answers = [stack.call(forwarded(leaf)) for _ in range(3)]
    assert [(answer.status, answer.error) for answer in answers] == [(status, error)] * 3
    assert crl_server.request_count == 1  # the failure is held, not downloaded per request
