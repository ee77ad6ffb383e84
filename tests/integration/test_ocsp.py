"""OcspChecker against certsas's own responder on 127.0.0.1: real sockets, fixed clock."""

from __future__ import annotations

import base64
import dataclasses
import logging
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from certsas.clientcert import PresentedCertificate
from certsas.config import RevocationMode, RevocationSettings, Settings
from certsas.devtools.ocsp_responder import OcspResponder, main
from certsas.devtools.ocsp_signing import Fault, Reply
from certsas.devtools.pki import CLIENT_AUTH, OCSP_SIGNING, CertificateAuthority, Issued, new_key
from certsas.errors import CertificateRevoked, RevocationStatusUnknown, RevocationUnavailable
from certsas.ocsp.checker import OcspChecker, build_request
from certsas.revocation import RevocationChecker, RevocationOutcome, RevocationPolicy
from certsas.runtime import build_revocation
from certsas.verification import VerifiedCertificate
from tests.support.azurite import free_port
from tests.support.clock import ManualClock
from tests.support.ocsp_faults import (
    CorruptSignature,
    PlanFault,
    ReplyFault,
    SignedByAnotherKey,
    TwoSingleResponses,
    hang,
    http_status,
    response_status,
)
from tests.support.pki import OcspPki, Pki

GOOD, SOFT_FAILED, NOT_CHECKED = (
    RevocationOutcome.OCSP_GOOD, RevocationOutcome.SOFT_FAILED, RevocationOutcome.NOT_CHECKED,
)
MakeChecker = Callable[..., RevocationPolicy]
MakeRevocation = Callable[[RevocationMode], RevocationChecker]


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The responders are on loopback; a proxy from the developer's shell would intercept."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def checker(ocsp_clock: ManualClock) -> MakeChecker:
    """``checker(mode=..., url=..., timeout=..., cache=...)``: the policy with OCSP alone."""

    def make(
        mode: RevocationMode = RevocationMode.REQUIRE,
        url: str | None = None,
        timeout: float = 2.0,
        cache: int = 3600,
        cache_size: int = 4096,
    ) -> RevocationPolicy:
        return RevocationPolicy(mode, [OcspChecker(
            responder_url=url, timeout_seconds=timeout, cache_max_seconds=cache,
            clock=ocsp_clock, cache_size=cache_size)])

    return make


@pytest.fixture
def revocation(checker: MakeChecker) -> MakeRevocation:
    """Like ``checker``, but "off" is what the runtime builds for it: no checker at all."""

    def make(mode: RevocationMode) -> RevocationChecker:
        if mode is RevocationMode.OFF:
            return build_revocation(RevocationSettings(mode=mode))
        return checker(mode=mode)

    return make


def use_delegated_signer(responder: OcspResponder, ocsp_pki: OcspPki) -> None:
    responder.signer, responder.signer_key = ocsp_pki.signer.certificate, ocsp_pki.signer.key


# --- good / revoked / unknown in each mode -----------------------------------------

OUTCOMES = [
    # (certificate, mode, outcome or refusal)
    ("good", RevocationMode.REQUIRE, GOOD),
    ("good", RevocationMode.SOFT_FAIL, GOOD),
    ("good", RevocationMode.OFF, NOT_CHECKED),
    ("revoked", RevocationMode.REQUIRE, CertificateRevoked),
    ("revoked", RevocationMode.SOFT_FAIL, CertificateRevoked),
    ("revoked", RevocationMode.OFF, NOT_CHECKED),
    ("unknown", RevocationMode.REQUIRE, RevocationStatusUnknown),
    ("unknown", RevocationMode.SOFT_FAIL, SOFT_FAILED),
    ("unknown", RevocationMode.OFF, NOT_CHECKED),
]


@pytest.mark.parametrize("signer", ["ca", "delegated"])
@pytest.mark.parametrize(("which", "mode", "expected"), OUTCOMES)
def test_answer_in_each_mode(
    ocsp_pki: OcspPki, ocsp_responder: OcspResponder, revocation: MakeRevocation,
    signer: str, which: str, mode: RevocationMode, expected: object,
) -> None:
    if signer == "delegated":
        use_delegated_signer(ocsp_responder, ocsp_pki)
    verified = ocsp_pki.verified(getattr(ocsp_pki, which))
    if isinstance(expected, type):
        with pytest.raises(expected):
            revocation(mode).check(verified)
    else:
        assert revocation(mode).check(verified) is expected
    assert ocsp_responder.request_count == (0 if mode is RevocationMode.OFF else 1)


def test_revoked_refusal_says_when(ocsp_pki: OcspPki, ocsp_responder: OcspResponder,
                                   checker: MakeChecker) -> None:
    with pytest.raises(CertificateRevoked) as caught:
        checker().check(ocsp_pki.verified(ocsp_pki.revoked))
    assert caught.value.code == "certificate_revoked"
    assert f"{ocsp_pki.revoked.certificate.serial_number:X}" in caught.value.detail
    assert "keyCompromise" in caught.value.detail


def test_soft_fail_logs_a_warning(ocsp_pki: OcspPki, ocsp_responder: OcspResponder,
                                  checker: MakeChecker, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="certsas.revocation"):
        assert checker(mode=RevocationMode.SOFT_FAIL).check(ocsp_pki.verified(ocsp_pki.unknown)) \
            is SOFT_FAILED
    [record] = caplog.records
    assert "revocation_status_unknown" in record.getMessage()
    assert ocsp_pki.verified(ocsp_pki.unknown).presented.thumbprint in record.getMessage()
    assert "BEGIN CERTIFICATE" not in record.getMessage()


# --- faults: never a valid answer ----------------------------------------------------


def _other_ca_signer(ocsp_pki: OcspPki) -> PlanFault:
    other = ocsp_pki.stranger.issue("stranger ocsp", eku=(OCSP_SIGNING,))
    return PlanFault(lambda plan: plan.replace(signer=other.certificate, signer_key=other.key,
                                               certificates=(other.certificate,)))


def _signer_without_eku(ocsp_pki: OcspPki) -> PlanFault:
    no_eku = ocsp_pki.issuing.issue("not an ocsp signer", eku=(CLIENT_AUTH,))
    return PlanFault(lambda plan: plan.replace(signer=no_eku.certificate, signer_key=no_eku.key,
                                               certificates=(no_eku.certificate,)))


def _expired_signer(ocsp_pki: OcspPki) -> PlanFault:
    now = ocsp_pki.issuing.certificate.not_valid_before_utc + timedelta(hours=2)
    old = ocsp_pki.issuing.issue("old ocsp signer", eku=(OCSP_SIGNING,), not_before=now,
                                 not_after=now + timedelta(hours=1))
    return PlanFault(lambda plan: plan.replace(signer=old.certificate, signer_key=old.key,
                                               certificates=(old.certificate,)))


def _client_signs(ocsp_pki: OcspPki) -> PlanFault:
    """Another client's certificate claims to be the responder (the classic forgery)."""
    client = ocsp_pki.good
    return PlanFault(lambda plan: plan.replace(signer=client.certificate, signer_key=client.key,
                                               certificates=(client.certificate,)))


def _wrong_key(ocsp_pki: OcspPki) -> Fault:
    """Says it is the CA, signed by someone else's key."""
    return SignedByAnotherKey(ocsp_pki.stranger.key)


def _signer_not_carried(ocsp_pki: OcspPki) -> PlanFault:
    return PlanFault(lambda plan: plan.replace(signer=ocsp_pki.signer.certificate,
                                               signer_key=ocsp_pki.signer.key, certificates=()))


FAULTS: dict[str, tuple[Callable[[OcspPki], Fault], str]] = {
    "signed by another key": (_wrong_key, "signature does not verify"),
    "corrupted signature": (lambda _: CorruptSignature(), "signature does not verify"),
    "signer lacks OCSPSigning": (_signer_without_eku, "lacks id-kp-OCSPSigning"),
    "signer from another CA": (_other_ca_signer, "not issued by the certificate's issuing CA"),
    "signer expired": (_expired_signer, "outside its validity period"),
    "another client signs": (_client_signs, "lacks id-kp-OCSPSigning"),
    "signer not carried": (_signer_not_carried, "responder ID names neither"),
    "stale nextUpdate": (lambda _: PlanFault(lambda p: p.replace(
        this_update=p.this_update - timedelta(days=2),
        next_update=p.this_update - timedelta(hours=1))), "is stale"),
    "future thisUpdate": (lambda _: PlanFault(lambda p: p.replace(
        this_update=p.this_update + timedelta(hours=1),
        next_update=p.this_update + timedelta(hours=2))), "in the future"),
    "wrong serial": (lambda _: PlanFault(lambda p: p.replace(serial_number=p.serial_number + 1)),
                     "no SingleResponse for the certificate's serial"),
    "wrong issuer hash, right serial": (lambda _: PlanFault(lambda p: p.replace(
        issuer_name_hash=bytes(20))), "another issuer"),
    "two SingleResponses": (lambda _: TwoSingleResponses(), "2 SingleResponses"),
    "nonce mismatch": (lambda _: PlanFault(lambda p: p.replace(nonce=b"\x01" * 16)),
                       "nonce in the response does not match"),
    "HTTP 500": (lambda _: http_status(500), "HTTP 500"),
    "wrong content type": (lambda _: ReplyFault(lambda r: dataclasses.replace(
        r, content_type="text/html")), "not OCSP"),
    "garbage body": (lambda _: ReplyFault(lambda r: dataclasses.replace(r, body=b"\x30\x03abc")),
                     "does not parse"),
    "tryLater": (lambda _: response_status(ocsp.OCSPResponseStatus.TRY_LATER), "TRY_LATER"),
    "malformedRequest": (lambda _: response_status(ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
                         "MALFORMED_REQUEST"),
    "unauthorized": (lambda _: response_status(ocsp.OCSPResponseStatus.UNAUTHORIZED),
                     "UNAUTHORIZED"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("which", ["good", "revoked"])
def test_fault_is_unavailable_in_require(
    ocsp_pki: OcspPki, ocsp_responder: OcspResponder, checker: MakeChecker,
    fault: str, which: str,
) -> None:
    make_fault, reason = FAULTS[fault]
    ocsp_responder.fault = make_fault(ocsp_pki)
    with pytest.raises(RevocationUnavailable) as caught:
        checker().check(ocsp_pki.verified(getattr(ocsp_pki, which)))
    assert reason in caught.value.detail
    assert caught.value.status == 503


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_is_allowed_in_soft_fail(
    ocsp_pki: OcspPki, ocsp_responder: OcspResponder, checker: MakeChecker, fault: str
) -> None:
    ocsp_responder.fault = FAULTS[fault][0](ocsp_pki)
    assert checker(mode=RevocationMode.SOFT_FAIL).check(ocsp_pki.verified(ocsp_pki.good)) is SOFT_FAILED


def test_two_answers_are_refused_even_if_both_say_good(
    ocsp_pki: OcspPki, ocsp_responder: OcspResponder, checker: MakeChecker
) -> None:
    ocsp_responder.fault = TwoSingleResponses(ocsp.OCSPCertStatus.GOOD)
    with pytest.raises(RevocationUnavailable, match="2 SingleResponses"):
        checker().check(ocsp_pki.verified(ocsp_pki.good))


def test_a_responder_that_omits_the_nonce_is_accepted(
    ocsp_pki: OcspPki, ocsp_responder: OcspResponder, checker: MakeChecker
) -> None:
    ocsp_responder.fault = PlanFault(lambda plan: plan.replace(nonce=None))
    assert checker().check(ocsp_pki.verified(ocsp_pki.good)) is GOOD


def test_an_old_undated_answer_without_our_nonce_is_refused_as_a_possible_replay(
    ocsp_pki: OcspPki, ocsp_responder: OcspResponder, checker: MakeChecker,
    ocsp_clock: ManualClock,
) -> None:
    old = ocsp_clock() - timedelta(hours=2)
    ocsp_responder.fault = PlanFault(
        lambda plan: plan.replace(nonce=None, next_update=None, this_update=old))
    with pytest.raises(RevocationUnavailable, match="no nextUpdate, no nonce"):
        checker().check(ocsp_pki.verified(ocsp_pki.good))
    # The same undated answer, just made, or carrying our nonce, is believed.
    ocsp_responder.fault = PlanFault(lambda plan: plan.replace(nonce=None, next_update=None))
    assert checker().check(ocsp_pki.verified(ocsp_pki.good)) is GOOD
    ocsp_responder.fault = PlanFault(lambda plan: plan.replace(next_update=None, this_update=old))
    assert checker().check(ocsp_pki.verified(ocsp_pki.good)) is GOOD


def test_a_hang_is_cut_at_the_timeout(
    ocsp_pki: OcspPki, ocsp_responder: OcspResponder, checker: MakeChecker
) -> None:
    ocsp_responder.fault = hang(5.0)
    started = time.monotonic()
    with pytest.raises(RevocationUnavailable, match="no answer within"):
        checker(timeout=0.3).check(ocsp_pki.verified(ocsp_pki.good))
    assert time.monotonic() - started < 1.0  # cut at 0.3 s, not at the 5 s hang
    assert ocsp_responder.request_count == 1  # no time left for a retry


def test_the_timeout_covers_the_retry(
    ocsp_pki: OcspPki, ocsp_responder: OcspResponder, checker: MakeChecker
) -> None:
    slow_500 = http_status(500)
    ocsp_responder.fault = ReplyFault(
        lambda reply: dataclasses.replace(slow_500.reply(reply, None), delay_seconds=0.5))
    started = time.monotonic()
    with pytest.raises(RevocationUnavailable, match="no answer within"):
        checker(timeout=0.7).check(ocsp_pki.verified(ocsp_pki.good))
    # 0.5 s for the first attempt, the retry gets the 0.2 s left: 0.7 s in all, not 1.0 s.
    assert time.monotonic() - started < 0.9
    assert ocsp_responder.request_count == 2  # one retry, cut short by the deadline


def test_one_retry_rescues_a_transient_500(
    ocsp_pki: OcspPki, ocsp_responder: OcspResponder, checker: MakeChecker
) -> None:
    calls: list[int] = []

    def first_fails(reply: Reply) -> Reply:
        calls.append(1)
        return http_status(500).reply(reply, None) if len(calls) == 1 else reply

    ocsp_responder.fault = ReplyFault(first_fails)
    assert checker().check(ocsp_pki.verified(ocsp_pki.good)) is GOOD
    assert ocsp_responder.request_count == 2


# --- which responder ------------------------------------------------------------------


def test_off_never_calls(ocsp_pki: OcspPki, ocsp_responder: OcspResponder) -> None:
    off = build_revocation(RevocationSettings(mode=RevocationMode.OFF,
                                              ocsp_responder_url=ocsp_responder.url))
    for issued in (ocsp_pki.good, ocsp_pki.revoked, ocsp_pki.no_aia):
        assert off.check(ocsp_pki.verified(issued)) is NOT_CHECKED
    assert ocsp_responder.request_count == 0


def test_the_policy_itself_refuses_to_be_off() -> None:
    source = OcspChecker(responder_url=None, timeout_seconds=1, cache_max_seconds=0)
    with pytest.raises(ValueError, match="NotChecked"):
        RevocationPolicy(RevocationMode.OFF, [source])


def test_no_responder_known_is_unknown(ocsp_pki: OcspPki, ocsp_responder: OcspResponder,
                                       checker: MakeChecker) -> None:
    with pytest.raises(RevocationStatusUnknown, match="names no OCSP responder"):
        checker().check(ocsp_pki.verified(ocsp_pki.no_aia))
    assert checker(mode=RevocationMode.SOFT_FAIL).check(ocsp_pki.verified(ocsp_pki.no_aia)) \
        is SOFT_FAILED
    assert ocsp_responder.request_count == 0


def test_override_url_is_used(ocsp_pki: OcspPki, checker: MakeChecker,
                              ocsp_clock: ManualClock) -> None:
    # The certificates' AIA names ocsp_pki.url, where nothing listens in this test.
    other = OcspResponder(issuer=ocsp_pki.issuing.certificate, issuer_key=ocsp_pki.issuing.key,
                          clock=ocsp_clock)
    with other:
        overridden = checker(url=other.url)
        assert overridden.check(ocsp_pki.verified(ocsp_pki.good)) is GOOD
        assert overridden.check(ocsp_pki.verified(ocsp_pki.no_aia)) is GOOD
        assert other.request_count == 2
    with pytest.raises(RevocationUnavailable, match="unreachable"):
        checker().check(ocsp_pki.verified(ocsp_pki.good))


# --- cache and single-flight ------------------------------------------------------------


def test_second_check_is_served_from_cache(ocsp_pki: OcspPki, ocsp_responder: OcspResponder,
                                           checker: MakeChecker) -> None:
    cached = checker()
    verified = ocsp_pki.verified(ocsp_pki.good)
    assert [cached.check(verified) for _ in range(5)] == [GOOD] * 5
    assert ocsp_responder.request_count == 1


def test_revoked_answers_are_cached_too(ocsp_pki: OcspPki, ocsp_responder: OcspResponder,
                                        checker: MakeChecker) -> None:
    cached = checker(mode=RevocationMode.SOFT_FAIL)
    for _ in range(3):
        with pytest.raises(CertificateRevoked):
            cached.check(ocsp_pki.verified(ocsp_pki.revoked))
    assert ocsp_responder.request_count == 1


def test_cache_ends_at_next_update(ocsp_pki: OcspPki, ocsp_responder: OcspResponder,
                                   checker: MakeChecker, ocsp_clock: ManualClock) -> None:
    ocsp_responder.next_update_seconds = 600
    cached, verified = checker(cache=3600), ocsp_pki.verified(ocsp_pki.good)
    cached.check(verified)
    ocsp_clock.advance(599)
    cached.check(verified)
    assert ocsp_responder.request_count == 1
    ocsp_clock.advance(1)
    cached.check(verified)
    assert ocsp_responder.request_count == 2


def test_cache_is_capped(ocsp_pki: OcspPki, ocsp_responder: OcspResponder,
                         checker: MakeChecker, ocsp_clock: ManualClock) -> None:
    ocsp_responder.next_update_seconds = 7200
    cached, verified = checker(cache=60), ocsp_pki.verified(ocsp_pki.good)
    cached.check(verified)
    ocsp_clock.advance(59)
    cached.check(verified)
    ocsp_clock.advance(1)
    cached.check(verified)
    assert ocsp_responder.request_count == 2


def test_a_revocation_shows_once_the_cached_answer_ends(
    ocsp_pki: OcspPki, ocsp_responder: OcspResponder, checker: MakeChecker,
    ocsp_clock: ManualClock,
) -> None:
    cached, verified = checker(cache=60), ocsp_pki.verified(ocsp_pki.good)
    assert cached.check(verified) is GOOD
    ocsp_responder.revoke(ocsp_pki.good.certificate.serial_number)
    assert cached.check(verified) is GOOD  # the answer we hold is still current
    ocsp_clock.advance(60)
    with pytest.raises(CertificateRevoked):
        cached.check(verified)


@pytest.mark.parametrize(("next_update", "cache"), [(None, 3600), (300, 0)])
def test_not_cached(ocsp_pki: OcspPki, ocsp_responder: OcspResponder, checker: MakeChecker,
                    next_update: int | None, cache: int) -> None:
    """An answer without nextUpdate is not cached; nor is anything with cache 0."""
    ocsp_responder.next_update_seconds = next_update
    uncached, verified = checker(cache=cache), ocsp_pki.verified(ocsp_pki.good)
    assert [uncached.check(verified) for _ in range(3)] == [GOOD] * 3
    assert ocsp_responder.request_count == 3


def test_unknown_is_not_cached(ocsp_pki: OcspPki, ocsp_responder: OcspResponder,
                               checker: MakeChecker) -> None:
    asking = checker(mode=RevocationMode.SOFT_FAIL)
    asking.check(ocsp_pki.verified(ocsp_pki.unknown))
    asking.check(ocsp_pki.verified(ocsp_pki.unknown))
    assert ocsp_responder.request_count == 2


def test_cache_is_bounded(ocsp_pki: OcspPki, ocsp_responder: OcspResponder,
                          checker: MakeChecker) -> None:
    small = checker(cache_size=1)
    good, revoked = ocsp_pki.verified(ocsp_pki.good), ocsp_pki.verified(ocsp_pki.revoked)
    small.check(good)
    with pytest.raises(CertificateRevoked):
        small.check(revoked)  # evicts good
    small.check(good)
    assert ocsp_responder.request_count == 3


def _together(count: int, check: Callable[[], object]) -> list[object]:
    """Run ``check`` in ``count`` threads released at once; results or exceptions."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = check()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return results


def test_concurrent_checks_make_one_call(ocsp_pki: OcspPki, ocsp_responder: OcspResponder,
                                         checker: MakeChecker) -> None:
    ocsp_responder.fault = hang(0.2)  # keep the leader in flight while the others arrive
    # The cache is on only so that a thread scheduled very late cannot make a second call;
    # the sixteen that arrive together all miss it, and without single-flight would all ask.
    shared, verified = checker(), ocsp_pki.verified(ocsp_pki.good)
    assert _together(16, lambda: shared.check(verified)) == [GOOD] * 16
    assert ocsp_responder.request_count == 1


def test_waiters_share_the_leaders_failure_and_it_is_not_kept(
    ocsp_pki: OcspPki, ocsp_responder: OcspResponder, checker: MakeChecker
) -> None:
    failing = http_status(500)
    ocsp_responder.fault = ReplyFault(
        lambda reply: dataclasses.replace(failing.reply(reply, None), delay_seconds=0.2))
    shared, verified = checker(), ocsp_pki.verified(ocsp_pki.good)
    results = _together(16, lambda: shared.check(verified))
    refusals = [result for result in results if isinstance(result, RevocationUnavailable)]
    assert len(refusals) == 16
    assert {refusal.detail for refusal in refusals} == {f"OCSP responder {ocsp_pki.url}: HTTP 500"}
    assert ocsp_responder.request_count == 2  # the leader's call and its one retry
    ocsp_responder.fault = ReplyFault(lambda reply: reply)
    assert shared.check(verified) is GOOD
    assert ocsp_responder.request_count == 3


def test_responder_down_then_back(ocsp_pki: OcspPki, ocsp_responder: OcspResponder,
                                  checker: MakeChecker) -> None:
    shared, verified = checker(), ocsp_pki.verified(ocsp_pki.good)
    ocsp_responder.stop()
    with pytest.raises(RevocationUnavailable, match="unreachable"):
        shared.check(verified)
    assert checker(mode=RevocationMode.SOFT_FAIL).check(verified) is SOFT_FAILED
    ocsp_responder.start()
    assert shared.check(verified) is GOOD
    assert ocsp_responder.request_count == 1


# --- settings ----------------------------------------------------------------------------


def test_from_settings(pki: Pki) -> None:
    settings = Settings.from_env({
        "TRUSTED_CA_CERTS": pki.trust_bundle,
        "STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
        "OCSP_MODE": "soft-fail",
        "OCSP_RESPONDER_URL": "http://127.0.0.1:9/",
        "OCSP_TIMEOUT_SECONDS": "1.5",
        "OCSP_CACHE_MAX_SECONDS": "120",
    })
    from_settings = build_revocation(settings.revocation)
    assert isinstance(from_settings, RevocationPolicy)
    ocsp_source = from_settings.sources[0]
    assert isinstance(ocsp_source, OcspChecker)
    assert (from_settings.mode, ocsp_source.responder_url, ocsp_source.timeout_seconds,
            ocsp_source.cache_max_seconds) == (RevocationMode.SOFT_FAIL, "http://127.0.0.1:9/", 1.5, 120)


# --- the responder itself ------------------------------------------------------------------


def test_responder_answers_get(ocsp_pki: OcspPki, ocsp_responder: OcspResponder) -> None:
    request, _ = build_request(ocsp_pki.revoked.certificate, ocsp_pki.issuing.certificate)
    encoded = base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode()
    reply = requests.get(ocsp_responder.url + urllib.parse.quote(encoded, safe=""), timeout=5)
    assert reply.headers["Content-Type"] == "application/ocsp-response"
    answer = ocsp.load_der_ocsp_response(reply.content)
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED


def test_responder_refuses_another_cas_certificates(
    ocsp_pki: OcspPki, ocsp_responder: OcspResponder
) -> None:
    stranger_client = ocsp_pki.stranger.issue("stranger client")
    request, _ = build_request(stranger_client.certificate, ocsp_pki.stranger.certificate)
    reply = requests.post(ocsp_responder.url, data=request.public_bytes(serialization.Encoding.DER),
                          headers={"Content-Type": "application/ocsp-request"}, timeout=5)
    answer = ocsp.load_der_ocsp_response(reply.content)
    assert answer.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_responder_command_line(tmp_path: Path, checker: MakeChecker) -> None:
    """``python -m certsas.devtools.ocsp_responder``: prints where it listens, answers, stops on SIGTERM."""
    ca = CertificateAuthority.root("cli test CA")
    signer = ca.issue("cli ocsp signer", eku=(OCSP_SIGNING,))
    good, revoked = ca.issue("cli good"), ca.issue("cli revoked")
    files = {"ca.pem": ca.issued.pem, "ca.key": ca.issued.key_pem, "signer.pem": signer.pem,
             "signer.key": signer.key_pem, "revoked.pem": revoked.pem}
    for file_name, content in files.items():
        (tmp_path / file_name).write_bytes(content)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "certsas.devtools.ocsp_responder", "--ca", "ca.pem", "--ca-key", "ca.key",
         "--signer", "signer.pem", "--signer-key", "signer.key", "--revoked", "revoked.pem",
         "--port", str(port)],
        cwd=tmp_path, stdout=subprocess.PIPE, text=True,
        env={"PYTHONPATH": str(Path(__file__).resolve().parent.parent.parent), "PATH": "/usr/bin:/bin"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"listening on http://127.0.0.1:{port}/" in line
        cli_checker = checker(url=f"http://127.0.0.1:{port}/")

        def verified(issued: Issued) -> VerifiedCertificate:
            return VerifiedCertificate(PresentedCertificate.from_der(issued.der),
                                       (issued.certificate, ca.certificate))

        assert cli_checker.check(verified(good)) is GOOD
        with pytest.raises(CertificateRevoked):
            cli_checker.check(verified(revoked))
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_responder_command_line_rejects_half_a_signer(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--ca", "ca.pem", "--ca-key", "ca.key", "--signer", "s.pem"]) == 2
    assert "--signer and --signer-key go together" in capsys.readouterr().err


def test_rsa_delegated_signer(ocsp_pki: OcspPki, ocsp_responder: OcspResponder,
                              checker: MakeChecker) -> None:
    rsa_signer = ocsp_pki.issuing.issue("rsa ocsp signer", eku=(OCSP_SIGNING,),
                                        key=new_key("rsa"))
    ocsp_responder.signer, ocsp_responder.signer_key = rsa_signer.certificate, rsa_signer.key
    assert checker().check(ocsp_pki.verified(ocsp_pki.good)) is GOOD
    with pytest.raises(CertificateRevoked):
        checker().check(ocsp_pki.verified(ocsp_pki.revoked))
