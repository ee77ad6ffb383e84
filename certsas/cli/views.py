"""A registration as the commands show it: text lines for a person, JSON for a script.

Text escapes control characters (:func:`certsas.cli.text.printable`); JSON keeps the
exact text, which ``json.dumps`` escapes as JSON must.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from certsas.cli.text import printable
from certsas.clock import iso
from certsas.expiry import days_left
from certsas.registry import Registration


def as_json(r: Registration, now: datetime, *, pem: bool = False) -> dict[str, Any]:
    """``list --json`` (no certificate) and ``show --json`` (``pem``: with it)."""
    document: dict[str, Any] = {
        "thumbprint": r.thumbprint, "thumbprint_sha1": r.thumbprint_sha1,
        "subject": r.subject, "issuer": r.issuer, "serial": r.serial,
        "not_before": iso(r.not_before), "not_after": iso(r.not_after),
        "days_left": days_left(r.not_after, now),
        "container": r.container, "prefix": r.prefix, "permissions": r.permissions,
        "max_ttl_minutes": r.max_ttl_minutes, "enabled": r.enabled,
        "description": r.description,
    }
    if pem:
        document["certificate_pem"] = r.certificate_pem
    return document


def text_lines(r: Registration) -> Iterator[str]:
    """``show`` and ``register``: one labelled field a line."""
    rows = [
        ("subject", r.subject), ("issuer", r.issuer), ("serial", r.serial),
        ("not before", iso(r.not_before)),
        ("not after", iso(r.not_after)),
        ("sha-256", r.thumbprint), ("sha-1", r.thumbprint_sha1),
        ("container", r.container), ("prefix", r.prefix or "(none: container-scoped allowed)"),
        ("permissions", r.permissions), ("max ttl", f"{r.max_ttl_minutes} minutes"),
        ("enabled", "yes" if r.enabled else "no"), ("description", r.description),
    ]
    for label, value in rows:
        yield f"  {label:<12} {printable(value)}"
