"""What a registration allows: its grants (SPEC §4), and how they are stored.

A registration's grants are one JSON property, ``Grants``. An entity written by an
earlier version has no ``Grants`` but four columns (``Container``, ``BlobPrefix``,
``Permissions``, ``MaxTtlMinutes``) and is read as one grant (:func:`stored_grants`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from certsas.permissions import normalize_permissions

MAX_PREFIX = 1024
MAX_GRANTS = 64
# A Table string property holds 64 KiB of UTF-16: 32,768 characters.
MAX_GRANTS_JSON = 32 * 1024


def prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot be a registration's blob prefix, or None if it can.

    A prefix is a folder: it ends with ``/``, so ``tenant-a/`` never covers the sibling
    ``tenant-ab/x`` as the bare string ``tenant-a`` would. It must also be a name a
    blob could start with (the request rules of SPEC §1), or it would match nothing.
    """
    if not prefix:
        return None
    if len(prefix) > MAX_PREFIX:
        return f"is longer than {MAX_PREFIX} characters"
    if not prefix.endswith("/"):
        shown = prefix[:40]
        return (f"must end with '/' (a folder: {shown!r} would also cover "
                f"{shown + 'b/...'!r}); use {shown + '/'!r}")
    if prefix.startswith("/") or any(ord(ch) < 0x20 or ch in "\\\x7f" for ch in prefix):
        return "may not start with '/' or hold control characters or a backslash"
    if any(segment in (".", "..") for segment in prefix.split("/")):
        return "may not contain '.' or '..' segments"
    return None


@dataclass(frozen=True)
class AccessGrant:
    """One place a registration may reach: a container, optionally only the blobs under a
    folder (``prefix``, ending in ``/``), with these letters for at most this long."""

    container: str
    prefix: str
    permissions: str
    max_ttl_minutes: int

    @property
    def key(self) -> tuple[str, str]:
        """What tells grants apart: one grant per container and prefix."""
        return self.container, self.prefix

    @classmethod
    def of(cls, container: str, *, prefix: str = "", permissions: str = "rl",
           max_ttl_minutes: int = 60) -> AccessGrant:
        """A checked grant; ``ValueError`` for a prefix, letters or lifetime it cannot have."""
        problem = prefix_problem(prefix)
        if problem:
            raise ValueError(f"prefix {problem}")
        if not container:
            raise ValueError("a grant names a container")
        if isinstance(max_ttl_minutes, bool) or not isinstance(max_ttl_minutes, int) \
                or max_ttl_minutes < 1:
            raise ValueError("max_ttl_minutes must be a positive integer")
        return cls(container, prefix, normalize_permissions(permissions), max_ttl_minutes)

    def to_json(self) -> dict[str, Any]:
        return {"container": self.container, "prefix": self.prefix,
                "permissions": self.permissions, "max_ttl_minutes": self.max_ttl_minutes}

    @classmethod
    def from_json(cls, data: Any) -> AccessGrant:
        if not isinstance(data, dict):
            raise TypeError("a grant is a JSON object")
        return cls.of(str(data["container"]), prefix=_folder(str(data.get("prefix") or "")),
                      permissions=str(data["permissions"]),
                      max_ttl_minutes=data["max_ttl_minutes"])

    def describe(self) -> str:
        """``container/prefix`` (or the container alone), as the CLI and logs name a grant."""
        return f"{self.container}/{self.prefix}" if self.prefix else self.container


def checked_grants(grants: Iterable[AccessGrant]) -> tuple[AccessGrant, ...]:
    """``grants`` as a registration holds them: at least one, at most ``MAX_GRANTS``, one per
    container and prefix; ``ValueError`` otherwise."""
    result = tuple(grants)
    if not result:
        raise ValueError("a registration holds at least one grant")
    if len(result) > MAX_GRANTS:
        raise ValueError(f"a registration holds at most {MAX_GRANTS} grants")
    if len({grant.key for grant in result}) != len(result):
        raise ValueError("two grants for the same container and prefix")
    return result


def grants_json(grants: Iterable[AccessGrant]) -> str:
    """The ``Grants`` property; ``ValueError`` if the grants do not fit in it."""
    text = json.dumps([grant.to_json() for grant in checked_grants(grants)],
                      separators=(",", ":"))
    if len(text) > MAX_GRANTS_JSON:
        raise ValueError(f"the grants take {len(text)} characters, more than a Table "
                         f"property holds ({MAX_GRANTS_JSON})")
    return text


def stored_grants(entity: dict[str, Any]) -> tuple[AccessGrant, ...]:
    """``Grants`` when the entity has it; otherwise (an earlier version's) its one grant."""
    stored = entity.get("Grants")
    if stored is None:
        return (AccessGrant.of(str(entity["Container"]),
                               prefix=_folder(str(entity.get("BlobPrefix") or "")),
                               permissions=str(entity["Permissions"]),
                               max_ttl_minutes=int(entity["MaxTtlMinutes"])),)
    return _parsed_grants(str(stored))


@lru_cache(maxsize=4096)
def _parsed_grants(text: str) -> tuple[AccessGrant, ...]:
    """Parsed and checked once per distinct text: with ``REGISTRY_CACHE_SECONDS=0`` every
    request reads the entity again, and 20 grants cost ~0.07 ms to check each time.
    Errors are not cached (``lru_cache`` keeps only results)."""
    try:
        listed = json.loads(text)
    except RecursionError:
        raise ValueError("Grants is nested too deeply") from None
    if not isinstance(listed, list):
        raise TypeError("Grants is not a JSON array")
    return checked_grants(AccessGrant.from_json(item) for item in listed)


def _folder(prefix: str) -> str:
    """A prefix stored by an earlier version without its trailing ``/`` is read as the
    folder it names: narrower than the bare string, never wider (fails closed)."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"
