"""In-memory stand-ins for the broker's seams, and a capture of its decision lines.

For the suites that exercise the broker without storage or responders (order of
checks, fuzzing): a registry, a revocation checker and an audit sink that keep
everything in memory, and the SPEC §1 codes as the contract lists them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from azure.core.exceptions import ResourceExistsError

from certsas.audit import AuditRecord
from certsas.errors import DependencyUnavailable, Refusal
from certsas.registration import Registration
from certsas.revocation import RevocationOutcome
from certsas.rotation import RotationRecord
from certsas.verification import VerifiedCertificate

SPEC_CODES = {
    "client_certificate_missing", "client_certificate_malformed", "certificate_not_trusted",
    "certificate_expired", "certificate_revoked", "revocation_status_unknown",
    "certificate_not_registered", "scope_not_allowed", "invalid_request",
    "revocation_unavailable", "dependency_unavailable", "rotation_not_allowed",
    "successor_invalid",
}


class MemoryRegistry:
    def __init__(self) -> None:
        self.entries: dict[str, Registration] = {}
        self.reads = 0

    def get(self, thumbprint: str) -> Registration | None:
        self.reads += 1
        return self.entries.get(thumbprint)


class MemoryRegistrations(MemoryRegistry):
    """The registry as rotation writes it: an insert refuses a thumbprint already there."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def add(self, registration: Registration) -> None:
        with self._lock:
            if registration.thumbprint in self.entries:
                raise ResourceExistsError("EntityAlreadyExists")
            self.entries[registration.thumbprint] = registration


class MemoryRotationAudit:
    def __init__(self, fail: bool = False) -> None:
        self.records: list[RotationRecord] = []
        self.fail = fail

    def record(self, record: RotationRecord) -> None:
        if self.fail:
            raise DependencyUnavailable("audit down")
        self.records.append(record)


class RecordingRevocation:
    def __init__(self, refusal: Refusal | None = None, *, only: str | None = None) -> None:
        self.refusal = refusal
        self.only = only  # refuse only this thumbprint (None: every one)
        self.checked: list[str] = []

    def check(self, verified: VerifiedCertificate) -> RevocationOutcome:
        thumbprint = verified.presented.thumbprint
        self.checked.append(thumbprint)
        if self.refusal and self.only in (None, thumbprint):
            raise self.refusal
        return RevocationOutcome.OCSP_GOOD


class MemoryAudit:
    def __init__(self, fail: bool = False) -> None:
        self.records: list[AuditRecord] = []
        self.fail = fail

    def record(self, record: AuditRecord) -> None:
        if self.fail:
            raise DependencyUnavailable("audit down")
        self.records.append(record)


class DecisionLines(logging.Handler):
    """The decision lines logged, as dicts, in order."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.decisions: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("certsas decision"):
            self.decisions.append(dict(record.certsas))  # type: ignore[attr-defined]


@contextmanager
def capturing_decisions() -> Iterator[DecisionLines]:
    """Every decision line logged meanwhile; they still propagate (the log-hygiene plugin
    checks each one)."""
    handler = DecisionLines()
    audit_logger = logging.getLogger("certsas.audit")
    audit_logger.addHandler(handler)
    try:
        yield handler
    finally:
        audit_logger.removeHandler(handler)
