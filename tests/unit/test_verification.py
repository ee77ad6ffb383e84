"""Dates and chain validation, and the reuse of a verified chain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from certsas.clientcert import PresentedCertificate
from certsas.errors import CertificateExpired, CertificateNotTrusted
from certsas.verification import ChainValidator, check_dates
from tests.support.pki import Pki


def presented(der: bytes) -> PresentedCertificate:
    return PresentedCertificate.from_der(der)


def test_chain_runs_leaf_to_anchor(pki: Pki) -> None:
    verified = ChainValidator((pki.issuing.certificate,)).verify(presented(pki.client.der))
    assert verified.chain[0] == pki.client.certificate
    assert verified.issuer == pki.issuing.certificate


def test_only_root_configured_cannot_build_the_chain(pki: Pki) -> None:
    # The front end forwards the leaf alone, so the issuing CA must be configured.
    with pytest.raises(CertificateNotTrusted):
        ChainValidator((pki.root.certificate,)).verify(presented(pki.client.der))


def test_bad_signature_is_not_trusted(pki: Pki) -> None:
    der = bytearray(pki.client.der)
    der[-3] ^= 0xFF  # inside the signature value
    with pytest.raises(CertificateNotTrusted):
        ChainValidator((pki.issuing.certificate,)).verify(presented(bytes(der)))


def test_expired_intermediate_is_not_trusted(pki: Pki) -> None:
    now = datetime.now(UTC)
    old = pki.root.intermediate("old issuing", not_before=now - timedelta(days=30),
                                not_after=now - timedelta(days=1))
    leaf = old.issue("c", not_before=now - timedelta(days=2), not_after=now + timedelta(days=2))
    with pytest.raises(CertificateNotTrusted):
        ChainValidator((old.certificate, pki.root.certificate)).verify(presented(leaf.der))


def test_check_dates_bounds(pki: Pki) -> None:
    cert = pki.client.certificate
    check_dates(cert, cert.not_valid_before_utc)
    check_dates(cert, cert.not_valid_after_utc)
    with pytest.raises(CertificateExpired):
        check_dates(cert, cert.not_valid_before_utc - timedelta(seconds=1))
    with pytest.raises(CertificateExpired):
        check_dates(cert, cert.not_valid_after_utc + timedelta(seconds=1))


def test_verified_chain_is_reused_but_not_past_its_lifetime(pki: Pki) -> None:
    now = [datetime.now(UTC)]
    validator = ChainValidator((pki.issuing.certificate,), clock=lambda: now[0], cache_seconds=60)
    calls = []
    original = validator._verifier

    def counting(at: datetime):  # type: ignore[no-untyped-def]
        calls.append(at)
        return original(at)

    validator._verifier = counting  # type: ignore[method-assign,assignment]
    p = presented(pki.client.der)
    validator.verify(p)
    validator.verify(p)
    assert len(calls) == 1
    now[0] += timedelta(seconds=61)
    validator.verify(p)
    assert len(calls) == 2


def test_cache_never_outlives_the_chain(pki: Pki) -> None:
    now = datetime.now(UTC)
    leaf = pki.issuing.issue("short", not_after=now + timedelta(seconds=30))
    clock = [now]
    validator = ChainValidator((pki.issuing.certificate,), clock=lambda: clock[0],
                               cache_seconds=3600)
    validator.verify(presented(leaf.der))
    clock[0] = now + timedelta(seconds=31)
    with pytest.raises(CertificateNotTrusted):
        validator.verify(presented(leaf.der))


def test_cache_is_bounded(pki: Pki) -> None:
    validator = ChainValidator((pki.issuing.certificate,), cache_size=3)
    for i in range(6):
        validator.verify(presented(pki.issuing.issue(f"c{i}").der))
    assert len(validator._cache) == 3
