"""RFC 6960 validation against odd but validly signed answers from the real responder on
loopback (issue 11, item 4): any exception while reading a response is "no valid answer";
every certificate the ResponderID names is tried; critical extensions we do not
understand, on the response or on a SingleResponse, make the response unusable."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography import x509

from certsas.config import RevocationMode, RevocationSettings, RevocationSource
from certsas.devtools.ocsp_responder import OcspResponder
from certsas.devtools.ocsp_signing import Fault
from certsas.devtools.pki import CLIENT_AUTH, OCSP_SIGNING
from certsas.errors import CertificateRevoked, RevocationUnavailable
from certsas.revocation import RevocationChecker, RevocationOutcome
from certsas.runtime import build_revocation
from tests.support.certforge import resign_with_edit
from tests.support.clock import ManualClock
from tests.support.ocsp_faults import EditSigned, PlanFault, SingleResponseExtension
from tests.support.pki import OcspPki

SHA1_OID = bytes.fromhex("06052b0e03021a")  # the CertID hash certsas asks with
UNKNOWN_HASH_OID = bytes.fromhex("06052b0e03027f")
EC_PUBLIC_KEY_OID = bytes.fromhex("06072a8648ce3d0201")
UNKNOWN_KEY_OID = bytes.fromhex("06072a8648ce3d027f")
PRIVATE_OID = x509.ObjectIdentifier("1.3.6.1.4.1.45471.1.2")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def checker(clock: ManualClock, mode: RevocationMode = RevocationMode.REQUIRE
            ) -> RevocationChecker:
    return build_revocation(RevocationSettings(
        mode=mode, sources=(RevocationSource.OCSP,), ocsp_timeout_seconds=2.0), clock=clock)


def delegated(responder: OcspResponder, ocsp_pki: OcspPki) -> None:
    responder.signer, responder.signer_key = ocsp_pki.signer.certificate, ocsp_pki.signer.key


def unknown_key_certificate(ocsp_pki: OcspPki) -> x509.Certificate:
    """The delegated signer's certificate with its key algorithm OID made unknown, CA-signed."""
    der = resign_with_edit(ocsp_pki.signer.der, EC_PUBLIC_KEY_OID, UNKNOWN_KEY_OID,
                           ocsp_pki.issuing.key)
    return x509.load_der_x509_certificate(der)


def carrying(*certificates: x509.Certificate, **changes: object) -> Fault:
    return PlanFault(lambda plan: plan.replace(certificates=certificates, **changes))


MakeFault = Callable[[OcspPki], Fault]

UNUSABLE: dict[str, tuple[MakeFault, str]] = {
    "unknown CertID hash algorithm": (
        lambda pki: EditSigned(SHA1_OID, UNKNOWN_HASH_OID), "could not be read"),
    "only an unreadable certificate in certs": (
        lambda pki: carrying(unknown_key_certificate(pki)), "responder ID names neither"),
    "critical response extension": (
        lambda pki: PlanFault(lambda plan: plan.replace(extensions=(
            (x509.UnrecognizedExtension(PRIVATE_OID, b"\x05\x00"), True),))),
        "unrecognised critical extension 1.3.6.1.4.1.45471.1.2"),
    "critical SingleResponse extension": (
        lambda pki: SingleResponseExtension(critical=True),
        "SingleResponse has an unrecognised critical extension"),
}


@pytest.mark.parametrize("case", list(UNUSABLE))
def test_unusable_answers_are_unavailable_never_a_crash(
        ocsp_pki: OcspPki, ocsp_responder: OcspResponder, ocsp_clock: ManualClock,
        case: str) -> None:
    make_fault, reason = UNUSABLE[case]
    delegated(ocsp_responder, ocsp_pki)
    ocsp_responder.fault = make_fault(ocsp_pki)
    for which in (ocsp_pki.good, ocsp_pki.revoked):
        with pytest.raises(RevocationUnavailable) as caught:
            checker(ocsp_clock).check(ocsp_pki.verified(which))
        assert reason in caught.value.detail
        assert caught.value.status == 503
    # soft-fail allows what cannot be had, as for any other unusable answer
    assert checker(ocsp_clock, RevocationMode.SOFT_FAIL).check(
        ocsp_pki.verified(ocsp_pki.good)) is RevocationOutcome.SOFT_FAILED


def _lookalike_by_name(pki: OcspPki) -> Fault:
    # Same subject as the genuine signer, from a CA nobody trusts, carried first.
    lookalike = pki.stranger.issue("ocsp-signer", eku=(OCSP_SIGNING,))
    return carrying(lookalike.certificate, pki.signer.certificate,
                    responder_encoding=x509.ocsp.OCSPResponderEncoding.NAME)


def _lookalike_by_key(pki: OcspPki) -> Fault:
    # The genuine signer's key in a certificate the CA issued for client auth only.
    lookalike = pki.issuing.issue("ocsp-signer", eku=(CLIENT_AUTH,), key=pki.signer.key)
    return carrying(lookalike.certificate, pki.signer.certificate)


USABLE: dict[str, MakeFault] = {
    "lookalike by name before the signer": _lookalike_by_name,
    "lookalike by key before the signer": _lookalike_by_key,
    "unreadable certificate before the signer": lambda pki: carrying(
        unknown_key_certificate(pki), pki.signer.certificate),
    "non-critical unknown response extension": lambda pki: PlanFault(
        lambda plan: plan.replace(extensions=(
            (x509.UnrecognizedExtension(PRIVATE_OID, b"\x05\x00"), False),))),
    "non-critical SingleResponse extension": lambda pki: SingleResponseExtension(critical=False),
}


@pytest.mark.parametrize("case", list(USABLE))
def test_valid_answers_stay_usable(ocsp_pki: OcspPki, ocsp_responder: OcspResponder,
                                   ocsp_clock: ManualClock, case: str) -> None:
    delegated(ocsp_responder, ocsp_pki)
    ocsp_responder.fault = USABLE[case](ocsp_pki)
    assert checker(ocsp_clock).check(ocsp_pki.verified(ocsp_pki.good)) is RevocationOutcome.OCSP_GOOD
    with pytest.raises(CertificateRevoked):
        checker(ocsp_clock).check(ocsp_pki.verified(ocsp_pki.revoked))
