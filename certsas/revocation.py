"""Revocation (SPEC §2a): the policy that asks the sources in turn and decides.

Each source (:class:`certsas.ocsp.checker.OcspChecker`, :class:`certsas.crl.checker.CrlChecker`)
answers with a :class:`Verdict` and knows nothing of the mode. The policy combines them:

    sources asked in REVOCATION_SOURCES order; the first good or revoked ends it
    revoked (from the source that answered)   -> CertificateRevoked, in every mode
    nothing definitive, some source failed    -> RevocationUnavailable     (soft-fail: allowed)
    nothing definitive, none failed           -> RevocationStatusUnknown   (soft-fail: allowed)

``REVOCATION_MODE=off`` is :class:`NotChecked`, decided once where the broker is assembled
(:mod:`certsas.runtime`): it never calls out. A refusal carries ``revocation`` (e.g.
``crl:revoked``, ``ocsp:unavailable,crl:unknown``) for the decision line.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from certsas.config import RevocationMode
from certsas.errors import CertificateRevoked, RevocationStatusUnknown, RevocationUnavailable
from certsas.verification import VerifiedCertificate

logger = logging.getLogger("certsas.revocation")


class Status(enum.Enum):
    GOOD = "good"
    REVOKED = "revoked"  # certificateHold included
    UNKNOWN = "unknown"  # the source has no answer for this certificate (none applies)
    UNAVAILABLE = "unavailable"  # the source failed: unreachable, too slow, too big, invalid


@dataclass(frozen=True)
class Verdict:
    """One source's answer about one certificate; ``detail`` is for the operator's log."""

    status: Status
    detail: str


class RevocationSource(Protocol):
    name: str  # "ocsp" or "crl": what the decision line and audit record say

    def verdict(self, verified: VerifiedCertificate) -> Verdict: ...


class RevocationOutcome(enum.Enum):
    """How an issued token's revocation question was settled (decision line, audit record)."""

    OCSP_GOOD = "ocsp:good"
    CRL_GOOD = "crl:good"
    NOT_CHECKED = "not_checked"  # REVOCATION_MODE=off
    SOFT_FAILED = "soft_failed"  # soft-fail let an unanswered question through


class RevocationChecker(Protocol):
    def check(self, verified: VerifiedCertificate) -> RevocationOutcome: ...


class NotChecked:
    """``REVOCATION_MODE=off``: never calls out."""

    def check(self, verified: VerifiedCertificate) -> RevocationOutcome:
        return RevocationOutcome.NOT_CHECKED


class RevocationPolicy:
    """SPEC §2a's combination rule over ``sources``, in require or soft-fail mode."""

    def __init__(self, mode: RevocationMode, sources: Sequence[RevocationSource]) -> None:
        if mode is RevocationMode.OFF:
            raise ValueError("revocation off means no policy; build NotChecked instead")
        if not sources:
            raise ValueError("at least one revocation source is required")
        self.mode = mode
        self.sources = tuple(sources)

    def check(self, verified: VerifiedCertificate) -> RevocationOutcome:
        trail: list[tuple[str, Verdict]] = []
        for source in self.sources:
            verdict = source.verdict(verified)
            trail.append((source.name, verdict))
            if verdict.status is Status.GOOD:
                return RevocationOutcome(f"{source.name}:good")
            if verdict.status is Status.REVOKED:
                revoked = CertificateRevoked(verdict.detail)
                revoked.revocation = f"{source.name}:revoked"
                raise revoked
        failed = any(verdict.status is Status.UNAVAILABLE for _, verdict in trail)
        detail = "; ".join(verdict.detail for _, verdict in trail)
        refusal = RevocationUnavailable(detail) if failed else RevocationStatusUnknown(detail)
        refusal.revocation = ",".join(f"{name}:{verdict.status.value}" for name, verdict in trail)
        if self.mode is RevocationMode.REQUIRE:
            raise refusal
        logger.warning(
            "revocation soft-fail: allowing certificate %s without a revocation answer (%s: %s)",
            verified.presented.thumbprint, refusal.code, refusal.detail,
        )
        return RevocationOutcome.SOFT_FAILED
