"""Revocation through the function: OCSP is the last check, and its answers map to SPEC codes."""

from __future__ import annotations

import pytest

from certsas.devtools.ocsp_responder import OcspResponder
from tests.support.azurite import Azurite
from tests.support.pki import OcspPki, Pki
from tests.support.stack import Stack, app_env, build_stack, forwarded


def ocsp_stack(monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki,
               tables: tuple[str, str], ocsp: OcspPki, mode: str) -> Stack:
    env = app_env(azurite, pki.trust_bundle, tables, REVOCATION_MODE=mode, OCSP_TIMEOUT_SECONDS="1")
    stack = build_stack(monkeypatch, env, azurite.connection_string)
    for issued in (ocsp.good, ocsp.revoked, ocsp.unknown, ocsp.no_aia):
        stack.register(issued)
    return stack


def status(stack: Stack, issued: object) -> tuple[int, str | None]:
    answer = stack.call(forwarded(issued))  # type: ignore[arg-type]
    return answer.status, answer.error


def test_require_mode(monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki,
                      fresh_tables: tuple[str, str], ocsp_pki: OcspPki,
                      ocsp_responder: OcspResponder) -> None:
    stack = ocsp_stack(monkeypatch, azurite, pki, fresh_tables, ocsp_pki, "require")
    assert status(stack, ocsp_pki.good) == (200, None)
    assert status(stack, ocsp_pki.revoked) == (403, "certificate_revoked")
    assert status(stack, ocsp_pki.unknown) == (403, "revocation_status_unknown")
    assert status(stack, ocsp_pki.no_aia) == (403, "revocation_status_unknown")


def test_soft_fail_mode(monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki,
                        fresh_tables: tuple[str, str], ocsp_pki: OcspPki,
                        ocsp_responder: OcspResponder) -> None:
    stack = ocsp_stack(monkeypatch, azurite, pki, fresh_tables, ocsp_pki, "soft-fail")
    assert status(stack, ocsp_pki.revoked) == (403, "certificate_revoked")
    assert status(stack, ocsp_pki.unknown) == (200, None)
    assert status(stack, ocsp_pki.no_aia) == (200, None)
    ocsp_responder.stop()
    assert status(stack, ocsp_pki.good) == (200, None)


def test_off_mode_never_calls_out(monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki,
                                  fresh_tables: tuple[str, str], ocsp_pki: OcspPki,
                                  ocsp_responder: OcspResponder) -> None:
    stack = ocsp_stack(monkeypatch, azurite, pki, fresh_tables, ocsp_pki, "off")
    assert status(stack, ocsp_pki.revoked) == (200, None)
    assert ocsp_responder.request_count == 0


def test_responder_flapping_is_503_then_recovers_with_no_wrong_answer_cached(
        monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki,
        fresh_tables: tuple[str, str], ocsp_pki: OcspPki, ocsp_responder: OcspResponder) -> None:
    stack = ocsp_stack(monkeypatch, azurite, pki, fresh_tables, ocsp_pki, "require")
    ocsp_responder.stop()
    assert status(stack, ocsp_pki.revoked) == (503, "revocation_unavailable")
    assert status(stack, ocsp_pki.good) == (503, "revocation_unavailable")
    ocsp_responder.start()
    assert status(stack, ocsp_pki.revoked) == (403, "certificate_revoked")
    assert status(stack, ocsp_pki.good) == (200, None)
    ocsp_responder.stop()
    # Valid answers are reused until nextUpdate; the revoked one stays revoked.
    assert status(stack, ocsp_pki.revoked) == (403, "certificate_revoked")
    assert status(stack, ocsp_pki.good) == (200, None)


def test_only_a_certificate_that_passed_everything_else_reaches_the_responder(
        monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki,
        fresh_tables: tuple[str, str], ocsp_pki: OcspPki, ocsp_responder: OcspResponder) -> None:
    env = app_env(azurite, pki.trust_bundle, fresh_tables, REVOCATION_MODE="require")
    stack = build_stack(monkeypatch, env, azurite.connection_string)
    # Revoked, but unregistered: the registry refuses it before OCSP is asked.
    assert status(stack, ocsp_pki.revoked) == (403, "certificate_not_registered")
    stack.register(ocsp_pki.revoked, permissions="r")
    # Registered, but asking beyond its scope: refused before OCSP too.
    answer = stack.call(forwarded(ocsp_pki.revoked), {"permissions": "w"})
    assert (answer.status, answer.error) == (403, "scope_not_allowed")
    assert ocsp_responder.request_count == 0
    assert status(stack, ocsp_pki.revoked) == (403, "certificate_revoked")
    assert ocsp_responder.request_count == 1
