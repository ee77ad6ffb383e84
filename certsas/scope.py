"""What the caller asks for, and what it gets (SPEC §1 scope rules).

Parsing the body is :func:`parse_token_request` (malformed → ``invalid_request``);
deciding the grant is :func:`decide_scope` (beyond the registration →
``scope_not_allowed``, never silently reduced).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from certsas.errors import InvalidRequest, ScopeNotAllowed
from certsas.grants import AccessGrant
from certsas.permissions import CONTAINER_ONLY, for_blob, normalize_permissions
from certsas.registration import Registration

MAX_BODY_BYTES = 8 * 1024
MAX_BLOB_NAME = 1024
FIELDS = frozenset({"container", "blob", "permissions", "ttl_minutes"})
_CONTAINER = re.compile(r"(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class TokenRequest:
    """The optional fields of ``POST /api/token``; None means "the default"."""

    container: str | None = None
    blob: str | None = None
    permissions: str | None = None
    ttl_minutes: int | None = None


@dataclass(frozen=True)
class Grant:
    """What a token will allow: one container, or one blob in it, for a lifetime."""

    container: str
    blob: str | None
    permissions: str
    ttl_minutes: int
    # The registration's grant that allowed it (its prefix, "" for none): for the log.
    prefix: str = ""

    @property
    def resource(self) -> str:
        return "blob" if self.blob is not None else "container"


def parse_token_request(body: bytes) -> TokenRequest:
    """An empty body or a JSON object of the documented fields; anything else is refused."""
    if len(body) > MAX_BODY_BYTES:
        raise InvalidRequest(f"body larger than {MAX_BODY_BYTES} bytes")
    if not body.strip():
        return TokenRequest()
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidRequest("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest("body is not a JSON object")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(map(_short, unknown))}",
                             message=f"Unknown field(s); the fields are {', '.join(sorted(FIELDS))}.")
    return TokenRequest(
        container=_optional_str(data, "container"),
        blob=_blob_name(_optional_str(data, "blob")),
        permissions=_permissions(_optional_str(data, "permissions")),
        ttl_minutes=_ttl(data.get("ttl_minutes")),
    )


def decide_scope(
    request: TokenRequest,
    registration: Registration,
    *,
    default_ttl_minutes: int,
    max_ttl_minutes: int,
) -> Grant:
    """The grant for ``request`` under ``registration``; refuse anything beyond it.

    One of the registration's grants serves the request (:func:`select_grant`); its
    letters and lifetime are the limits, whatever the other grants allow.
    """
    container = request.container if request.container is not None \
        else _only_container(registration)
    blob = request.blob
    chosen = select_grant(registration.grants, container, blob)
    permissions = _granted_permissions(request.permissions, chosen.permissions, blob)
    cap = min(chosen.max_ttl_minutes, max_ttl_minutes)
    ttl = request.ttl_minutes if request.ttl_minutes is not None else min(default_ttl_minutes, cap)
    # Never silently shortened: a caller that asks for too long is told so.
    if ttl > cap:
        raise ScopeNotAllowed(f"ttl_minutes {ttl} above the cap {cap} of grant "
                              f"{chosen.describe()}",
                              message=f"ttl_minutes may be at most {cap} for this certificate.")
    return Grant(container=container, blob=blob, permissions=permissions, ttl_minutes=ttl,
                 prefix=chosen.prefix)


def select_grant(grants: tuple[AccessGrant, ...], container: str,
                 blob: str | None) -> AccessGrant:
    """The grant that serves ``container`` (and ``blob``), in one pass over ``grants``.

    A blob is served by the grant on its container with the longest prefix that covers it
    (no prefix covers every blob); a container-scoped token only by the container's grant
    without a prefix. A nested, longer prefix therefore replaces the shorter one for the
    blobs under it rather than adding to it.
    """
    best: AccessGrant | None = None
    on_container = False
    for grant in grants:
        if grant.container != container:
            continue
        on_container = True
        covers = not grant.prefix if blob is None else blob.startswith(grant.prefix)
        if covers and (best is None or len(grant.prefix) > len(best.prefix)):
            best = grant
    if best is not None:
        return best
    if not on_container:
        raise ScopeNotAllowed("no grant on the requested container",
                              message="The requested container is not allowed for this certificate.")
    if blob is None:
        raise ScopeNotAllowed("the container's grants all have a prefix",
                              message="Only blobs under the granted prefixes may be requested.")
    raise ScopeNotAllowed("blob is outside every granted prefix",
                          message="Only blobs under the granted prefixes may be requested.")


def _only_container(registration: Registration) -> str:
    """The container a request without one means: the registration's only one."""
    first = registration.grants[0].container
    for grant in registration.grants:
        if grant.container != first:
            raise InvalidRequest("no container, and the grants name several",
                                 message="container is required: this certificate's grants "
                                         "name several containers.")
    return first


def _granted_permissions(requested: str | None, registered: str, blob: str | None) -> str:
    if requested is None:
        granted = for_blob(registered) if blob is not None else registered
        if not granted:
            raise ScopeNotAllowed("no registered permission applies to a blob",
                                  message="No registered permission applies to a single blob.")
        return granted
    beyond = "".join(letter for letter in requested if letter not in registered)
    if beyond:
        raise ScopeNotAllowed(f"permission(s) {beyond!r} not registered",
                              message=f"Permission(s) {beyond!r} are not allowed for this certificate.")
    if blob is not None and set(requested) & CONTAINER_ONLY:
        raise InvalidRequest("'l' requested for a blob",
                             message="Permission 'l' (list) applies to containers, not to a blob.")
    return requested


def _optional_str(data: dict[str, Any], field: str) -> str | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{field} is not a string", message=f"{field} must be a string.")
    return value


def _blob_name(name: str | None) -> str | None:
    """Blob names that can be signed unambiguously; anything else is refused, not escaped."""
    if name is None:
        return None
    if not name or len(name) > MAX_BLOB_NAME:
        raise InvalidRequest("blob name empty or too long",
                             message=f"blob must be 1 to {MAX_BLOB_NAME} characters.")
    if any(ord(ch) < 0x20 or ch in "\\\x7f" for ch in name) or name.startswith("/"):
        raise InvalidRequest("blob name has control characters, backslash or a leading /",
                             message="blob has characters that are not allowed.")
    # JSON can carry a lone surrogate ("\ud800"); no URL or SAS can encode it.
    if not name.isascii() and not _encodes_as_utf8(name):
        raise InvalidRequest("blob name is not valid Unicode (a lone surrogate)",
                             message="blob has characters that are not allowed.")
    # "." and ".." segments are rewritten by URL normalisation and could escape a prefix.
    if any(segment in (".", "..") for segment in name.split("/")):
        raise InvalidRequest("blob name has a . or .. segment",
                             message="blob may not contain '.' or '..' path segments.")
    return name


def _encodes_as_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _permissions(letters: str | None) -> str | None:
    if letters is None:
        return None
    try:
        return normalize_permissions(letters)
    except ValueError as exc:
        raise InvalidRequest(str(exc), message=f"permissions: {exc}.") from None


def _ttl(value: object) -> int | None:
    if value is None:
        return None
    # bool is an int in Python; true is not a lifetime.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequest("ttl_minutes is not a positive integer",
                             message="ttl_minutes must be an integer of at least 1.")
    return value


def _short(text: str) -> str:
    return repr(text[:40])


def valid_container_name(name: str) -> bool:
    """Azure's container naming rule (3-63 chars, lowercase, digits, single hyphens)."""
    return bool(_CONTAINER.fullmatch(name))
