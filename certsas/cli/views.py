"""A registration as the commands show it: text lines for a person, JSON for a script,
and the notes that go with a change (what the settings cap, what disable does not stop).
``show``, ``list``, ``register`` (:mod:`certsas.cli.admin`) and ``grant``, ``ungrant``,
``rotation`` (:mod:`certsas.cli.grants`) all print a registration and its grants from here.

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
from certsas.grants import AccessGrant
from certsas.registration import Registration

DEFAULT_REGISTRY_CACHE_SECONDS = 30


def as_json(r: Registration, now: datetime, *, pem: bool = False) -> dict[str, Any]:
    """``list --json`` (no certificate) and ``show --json`` (``pem``: with it)."""
    document: dict[str, Any] = {
        "thumbprint": r.thumbprint, "thumbprint_sha1": r.thumbprint_sha1,
        "subject": r.subject, "issuer": r.issuer, "serial": r.serial,
        "not_before": iso(r.not_before), "not_after": iso(r.not_after),
        "days_left": days_left(r.not_after, now),
        **listed_fields(r), "enabled": r.enabled, "description": r.description,
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
        *show_rows(r),
        ("enabled", "yes" if r.enabled else "no"), ("description", r.description),
    ]
    for label, value in rows:
        yield f"  {label:<12} {printable(value)}"


def cap_note(r: Registration, env: Mapping[str, str]) -> list[str]:
    """A line when the settings cap tokens below what the registration allows."""
    cap = service_ttl_cap(env)
    longest = longest_ttl(r)
    if cap is None or longest <= cap:
        return []
    return [f"  note: SAS_MAX_TTL_MINUTES is {cap} in these settings: where the app's is "
            f"too, tokens live at most {cap} minutes, not {longest}"]


def still_working(r: Registration, env: Mapping[str, str]) -> list[str]:
    """What ``disable`` does not stop: the cached registry reads and the tokens out there."""
    try:
        cache = int(env.get("REGISTRY_CACHE_SECONDS", "").strip()
                    or DEFAULT_REGISTRY_CACHE_SECONDS)
    except ValueError:  # the app reports a bad value itself; say what the setting means
        cache = DEFAULT_REGISTRY_CACHE_SECONDS
    cap = service_ttl_cap(env)
    lifetime = min(longest_ttl(r), cap) if cap else longest_ttl(r)
    cached = ("the app reads the registry on every request (REGISTRY_CACHE_SECONDS=0): "
              "no new token from the next request on" if cache == 0 else
              f"the app may still issue it tokens for up to {cache} seconds "
              "(REGISTRY_CACHE_SECONDS: each instance reuses a registry read that long)")
    return [cached,
            f"tokens already issued stay valid until they expire (up to {lifetime} minutes): "
            "`certsas revoke-tokens` makes every issued token useless"]


def longest_ttl(r: Registration) -> int:
    """The longest lifetime any of the registration's grants allows."""
    return max(grant.max_ttl_minutes for grant in r.grants)


def grant_line(grant: AccessGrant) -> str:
    """``reports/in/  rw  max 30 min`` (a grant without a prefix: container-scoped too)."""
    where = grant.describe() if grant.prefix else f"{grant.container} (whole container)"
    return f"{where:<32} {grant.permissions:<6} max {grant.max_ttl_minutes} min"


def show_rows(r: Registration) -> Iterator[tuple[str, str]]:
    """The ``show`` rows for the grants, the rotation setting and ``rotated_from``."""
    for index, grant in enumerate(r.grants):
        yield ("grants" if index == 0 else "", grant_line(grant))
    yield ("rotation", "allowed (certsas rotation ... deny)" if r.allow_rotation
           else "not allowed")
    if r.rotated_from:
        yield ("rotated from", r.rotated_from)


def listed_fields(r: Registration) -> dict[str, Any]:
    """The grants in ``list --json`` and ``show --json``: ``container``, ``prefix``,
    ``permissions`` and ``max_ttl_minutes`` stay those of the first grant for scripts
    written before there were several."""
    first = r.grants[0]
    return {"container": first.container, "prefix": first.prefix,
            "permissions": first.permissions, "max_ttl_minutes": first.max_ttl_minutes,
            "grants": [grant.to_json() for grant in r.grants],
            "allow_rotation": r.allow_rotation, "rotated_from": r.rotated_from or None}


def extra_list_lines(r: Registration, indent: int) -> Iterator[str]:
    """``list``'s lines under a registration's row: its other grants, where it came from."""
    pad = " " * indent
    for grant in r.grants[1:]:
        yield f"{pad}{grant.describe():<20} {grant.permissions:<6}"
    if r.rotated_from:
        yield f"{pad}rotated from {r.rotated_from}"
