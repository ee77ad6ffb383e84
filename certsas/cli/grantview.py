"""How the command line shows a registration's grants and rotation (SPEC §4, §6).

Kept apart from the commands so that :mod:`certsas.cli.admin` (``show``, ``list``) and
:mod:`certsas.cli.grants` (``grant``, ``ungrant``, ``rotation``) print them alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from certsas.registry import AccessGrant, Registration


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
    """What ``list --json`` adds for grants; ``container``, ``prefix`` and ``permissions``
    stay those of the first grant for scripts written before there were several."""
    first = r.grants[0]
    return {"container": first.container, "prefix": first.prefix,
            "permissions": first.permissions,
            "grants": [grant.to_json() for grant in r.grants],
            "allow_rotation": r.allow_rotation, "rotated_from": r.rotated_from or None}


def extra_list_lines(r: Registration, indent: int) -> Iterator[str]:
    """``list``'s lines under a registration's row: its other grants, where it came from."""
    pad = " " * indent
    for grant in r.grants[1:]:
        yield f"{pad}{grant.describe():<20} {grant.permissions:<6}"
    if r.rotated_from:
        yield f"{pad}rotated from {r.rotated_from}"
