"""SPEC §2a's combination rule, source by source, with sources that answer as told."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest

from certsas.config import RevocationMode
from certsas.errors import CertificateRevoked, RevocationStatusUnknown, RevocationUnavailable
from certsas.revocation import RevocationOutcome, RevocationPolicy, Status, Verdict
from certsas.verification import VerifiedCertificate
from tests.support.pki import Pki


@dataclass
class Told:
    """A source that answers ``status`` and counts how often it was asked."""

    name: str
    status: Status
    asked: list[int] = field(default_factory=list)

    def verdict(self, verified: VerifiedCertificate) -> Verdict:
        self.asked.append(1)
        return Verdict(self.status, f"{self.name} said {self.status.value}")


def expected(first: Status, second: Status, mode: RevocationMode) -> object:
    """The rule, written out: the first definitive answer, else unavailable over unknown."""
    for name, status in (("ocsp", first), ("crl", second)):
        if status is Status.GOOD:
            return RevocationOutcome(f"{name}:good")
        if status is Status.REVOKED:
            return CertificateRevoked
    if mode is RevocationMode.SOFT_FAIL:
        return RevocationOutcome.SOFT_FAILED
    return RevocationUnavailable if Status.UNAVAILABLE in (first, second) \
        else RevocationStatusUnknown


@pytest.mark.parametrize("mode", [RevocationMode.REQUIRE, RevocationMode.SOFT_FAIL])
@pytest.mark.parametrize(("first", "second"), list(itertools.product(Status, Status)))
def test_every_pair_of_answers(pki: Pki, mode: RevocationMode, first: Status,
                               second: Status) -> None:
    ocsp, crl = Told("ocsp", first), Told("crl", second)
    policy = RevocationPolicy(mode, [ocsp, crl])
    want = expected(first, second, mode)
    if isinstance(want, type):
        with pytest.raises(want) as caught:
            policy.check(pki.verified(pki.client))
        revocation = caught.value.revocation  # type: ignore[attr-defined]
        if want is CertificateRevoked:
            assert revocation in ("ocsp:revoked", "crl:revoked")
        else:
            assert revocation == f"ocsp:{first.value},crl:{second.value}"
    else:
        assert policy.check(pki.verified(pki.client)) is want
    # The second source is asked only when the first gave nothing definitive.
    definitive = first in (Status.GOOD, Status.REVOKED)
    assert (len(ocsp.asked), len(crl.asked)) == (1, 0 if definitive else 1)


def test_revoked_from_the_second_source_refuses_after_an_unavailable_first(pki: Pki) -> None:
    policy = RevocationPolicy(RevocationMode.SOFT_FAIL,
                              [Told("ocsp", Status.UNAVAILABLE), Told("crl", Status.REVOKED)])
    with pytest.raises(CertificateRevoked, match="crl said revoked"):
        policy.check(pki.verified(pki.client))


def test_a_policy_needs_a_mode_that_asks_and_a_source() -> None:
    with pytest.raises(ValueError, match="NotChecked"):
        RevocationPolicy(RevocationMode.OFF, [Told("ocsp", Status.GOOD)])
    with pytest.raises(ValueError, match="at least one"):
        RevocationPolicy(RevocationMode.REQUIRE, [])
