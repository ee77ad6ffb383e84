"""The expiry check (SPEC §5a): which registrations and trust anchors expire soon or have.

:func:`expiring` is pure: registrations, anchors, now and the warning window in, the
warnings out. :func:`check` runs it once over a registry read and logs what it found,
one line per warning and one summary, in the form Azure Monitor queries (the field
names are a contract with the alert rules and the workbook):

- ``certsas expiry {json}`` (WARNING): ``kind`` (``registration`` or ``anchor``),
  ``thumbprint`` (SHA-256), ``subject``, ``description``, ``not_after``, ``days_left``,
  ``status`` (``expiring`` or ``expired``) and ``successor`` (null); for a registration
  whose successor is registered (an enabled registration's ``rotated_from`` names it,
  SPEC §4a) the same line at INFO, ``status`` ``expiring, successor registered: <SHA-256>``
  and ``successor`` that thumbprint: it is not counted as expiring or expired, and the
  alert on expiring certificates leaves it out;
- ``certsas expiry-unreadable {json}`` (WARNING): ``thumbprint``, ``reason`` of a
  registry entity that does not parse; the check reads on past it;
- ``certsas expiry-summary {json}`` (INFO): ``read`` (registry entities read),
  ``unreadable``, ``expiring`` and ``expired`` (counts of the warnings above, anchors
  included), ``successor_registered`` (the lines left out of those counts);
- ``certsas expiry-error {json}`` (ERROR): ``error``, when the registry cannot be read.

The check never changes a registration and never raises: a timer function that raises
only makes the host log a failure, and the next run is a day away anyway.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.core.exceptions import AzureError
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certsas.clock import iso
from certsas.errors import ConfigurationError, Refusal
from certsas.registration import Registration
from certsas.registry import Unreadable
from certsas.thumbprints import sha256_thumbprint

logger = logging.getLogger("certsas.expiry")

ANCHOR_DESCRIPTION = "trust anchor (TRUSTED_CA_CERTS)"


@dataclass(frozen=True)
class Expiring:
    """One warning: a certificate that expires within the window, or has expired."""

    kind: str  # "registration" or "anchor"
    thumbprint: str
    subject: str
    description: str
    not_after: datetime
    days_left: int
    successor: str | None = None  # a registered successor's SHA-256 (SPEC §4a)

    @property
    def expired(self) -> bool:
        return self.days_left < 0

    @property
    def status(self) -> str:
        if self.successor is not None:
            return f"expiring, successor registered: {self.successor}"
        return "expired" if self.expired else "expiring"

    def fields(self) -> dict[str, Any]:
        return {"kind": self.kind, "thumbprint": self.thumbprint, "subject": self.subject,
                "description": self.description, "not_after": iso(self.not_after),
                "days_left": self.days_left, "status": self.status,
                "successor": self.successor}


def days_left(not_after: datetime, now: datetime) -> int:
    """Whole days until ``not_after``, rounded down: 0 on its last day, negative (-1 on the
    first day after) once expired, so a negative number always means expired."""
    return math.floor((not_after - now) / timedelta(days=1))


def expiring(registrations: Iterable[Registration], anchors: Iterable[x509.Certificate], *,
             now: datetime, warning_days: int) -> list[Expiring]:
    """Enabled registrations and anchors that expire within ``warning_days`` of ``now`` or
    have expired, soonest first. A disabled registration cannot get a token, so it is not
    worth a warning (``certsas list --expiring`` still shows it). One whose successor is
    registered and enabled names it (:attr:`Expiring.successor`)."""
    horizon = now + timedelta(days=warning_days)
    enabled = [r for r in registrations if r.enabled]
    successors = {r.rotated_from: r.thumbprint for r in enabled if r.rotated_from}
    found = [
        Expiring("registration", r.thumbprint, r.subject, r.description, r.not_after,
                 days_left(r.not_after, now), successors.get(r.thumbprint))
        for r in enabled if r.not_after <= horizon
    ]
    for anchor in anchors:
        not_after = anchor.not_valid_after_utc
        if not_after <= horizon:
            der = anchor.public_bytes(serialization.Encoding.DER)
            found.append(Expiring("anchor", sha256_thumbprint(der),
                                  anchor.subject.rfc4514_string(), ANCHOR_DESCRIPTION,
                                  not_after, days_left(not_after, now)))
    return sorted(found, key=lambda e: (e.not_after, e.kind, e.thumbprint))


@dataclass(frozen=True)
class Summary:
    read: int
    unreadable: int
    expiring: int
    expired: int
    successor_registered: int = 0


def check(read: Callable[[], Iterable[Registration | Unreadable]],
          anchors: Iterable[x509.Certificate], *, now: datetime,
          warning_days: int) -> Summary | None:
    """Read every registration, log the warnings and the summary; ``None`` (and an error
    line) if the registry could not be read. Never raises."""
    try:
        registrations: list[Registration] = []
        unreadable = 0
        for item in read():
            if isinstance(item, Unreadable):
                unreadable += 1
                _log(logging.WARNING, "expiry-unreadable",
                     {"thumbprint": item.thumbprint, "reason": item.reason})
            else:
                registrations.append(item)
        found = expiring(registrations, anchors, now=now, warning_days=warning_days)
        for finding in found:
            # Nothing to do for one whose successor is registered: not a warning.
            level = logging.INFO if finding.successor is not None else logging.WARNING
            _log(level, "expiry", finding.fields())
        warnings = [finding for finding in found if finding.successor is None]
        expired = sum(1 for w in warnings if w.expired)
        summary = Summary(read=len(registrations) + unreadable, unreadable=unreadable,
                          expiring=len(warnings) - expired, expired=expired,
                          successor_registered=len(found) - len(warnings))
        _log(logging.INFO, "expiry-summary", summary.__dict__)
        return summary
    except Exception as exc:  # the host must never see it: log and return
        log_error(exc)
        return None


def log_error(exc: BaseException) -> None:
    """The ``expiry-error`` line for a check that could not run."""
    _log(logging.ERROR, "expiry-error", {"error": describe_error(exc)})


def describe_error(exc: BaseException) -> str:
    """The exception type and a reason safe to log: never the exception's own text for a
    storage error, which may echo a request, a URL or a setting's value."""
    name = type(exc).__name__
    if isinstance(exc, Refusal):
        return f"{name}: {exc.detail}"
    if isinstance(exc, ConfigurationError):
        return f"{name}: {exc}"  # names the setting, never its value
    if isinstance(exc, AzureError):
        return f"{name}: the registry table could not be read"
    return f"{name}: unexpected error in the expiry check"


def _log(level: int, event: str, fields: dict[str, Any]) -> None:
    logger.log(level, "certsas %s %s", event, json.dumps(fields, sort_keys=True),
               extra={"certsas": fields})
