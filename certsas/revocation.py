"""The revocation seam: the last check before a token is signed.

``REVOCATION_MODE=off`` is :class:`NotChecked`, decided once where the broker is
assembled (:mod:`certsas.runtime`); otherwise :class:`certsas.ocsp.checker.OcspChecker`.
A checker returns how the question was settled, or raises the refusal
(``certificate_revoked``, ``revocation_status_unknown``, ``revocation_unavailable``).
"""

from __future__ import annotations

import enum
from typing import Protocol

from certsas.verification import VerifiedCertificate


class RevocationOutcome(enum.Enum):
    GOOD = "good"  # a valid OCSP answer said good
    NOT_CHECKED = "not_checked"  # REVOCATION_MODE=off
    SOFT_FAILED = "soft_failed"  # soft-fail mode let an unanswered question through


class RevocationChecker(Protocol):
    def check(self, verified: VerifiedCertificate) -> RevocationOutcome: ...


class NotChecked:
    """``REVOCATION_MODE=off``: never calls out."""

    def check(self, verified: VerifiedCertificate) -> RevocationOutcome:
        return RevocationOutcome.NOT_CHECKED
