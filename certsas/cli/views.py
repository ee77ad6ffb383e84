"""A registration as the commands show it: text lines for a person, JSON for a script,
and the notes that go with a change (what the settings cap, what disable does not stop).

Text escapes control characters (:func:`certsas.cli.text.printable`); JSON keeps the
exact text, which ``json.dumps`` escapes as JSON must.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from certsas.cli.args import service_ttl_cap
from certsas.cli.text import printable
from certsas.clock import iso
from certsas.expiry import days_left
from certsas.registry import Registration

DEFAULT_REGISTRY_CACHE_SECONDS = 30


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


def cap_note(r: Registration, env: Mapping[str, str]) -> list[str]:
    """A line when the settings cap tokens below what the registration allows."""
    cap = service_ttl_cap(env)
    if cap is None or r.max_ttl_minutes <= cap:
        return []
    return [f"  note: SAS_MAX_TTL_MINUTES is {cap} in these settings: where the app's is "
            f"too, tokens live at most {cap} minutes, not {r.max_ttl_minutes}"]


def still_working(r: Registration, env: Mapping[str, str]) -> list[str]:
    """What ``disable`` does not stop: the cached registry reads and the tokens out there."""
    try:
        cache = int(env.get("REGISTRY_CACHE_SECONDS", "").strip()
                    or DEFAULT_REGISTRY_CACHE_SECONDS)
    except ValueError:  # the app reports a bad value itself; say what the setting means
        cache = DEFAULT_REGISTRY_CACHE_SECONDS
    cap = service_ttl_cap(env)
    lifetime = min(r.max_ttl_minutes, cap) if cap else r.max_ttl_minutes
    cached = ("the app reads the registry on every request (REGISTRY_CACHE_SECONDS=0): "
              "no new token from the next request on" if cache == 0 else
              f"the app may still issue it tokens for up to {cache} seconds "
              "(REGISTRY_CACHE_SECONDS: each instance reuses a registry read that long)")
    return [cached,
            f"tokens already issued stay valid until they expire (up to {lifetime} minutes): "
            "`certsas revoke-tokens` makes every issued token useless"]
