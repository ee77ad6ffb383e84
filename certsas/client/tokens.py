"""A token as certsas issues it, and what the client asks for (a scope)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from certsas.client.errors import Unreachable


@dataclass(frozen=True)
class Scope:
    """What one request to ``/api/token`` asks for; ``None`` leaves it to the registration."""

    container: str | None = None
    blob: str | None = None
    permissions: str | None = None
    ttl_minutes: int | None = None

    def body(self) -> dict[str, Any]:
        fields = {"container": self.container, "blob": self.blob,
                  "permissions": self.permissions, "ttl_minutes": self.ttl_minutes}
        return {name: value for name, value in fields.items() if value is not None}

    def describe(self) -> str:
        where = self.container or "the registered container"
        return f"{where}/{self.blob}" if self.blob else where


@dataclass(frozen=True)
class Token:
    """certsas's answer (SPEC §1). ``token`` and ``url`` are secrets: left out of the repr."""

    token: str = field(repr=False)
    url: str = field(repr=False)
    expires_on: datetime
    permissions: str
    resource: str
    container: str
    blob: str | None

    @classmethod
    def from_answer(cls, payload: dict[str, Any]) -> Token:
        try:
            return cls(
                token=str(payload["token"]), url=str(payload["url"]),
                expires_on=datetime.strptime(str(payload["expires_on"]), "%Y-%m-%dT%H:%M:%SZ"
                                             ).replace(tzinfo=UTC),
                permissions=str(payload["permissions"]), resource=str(payload["resource"]),
                container=str(payload["container"]),
                blob=None if payload.get("blob") is None else str(payload["blob"]),
            )
        except (KeyError, ValueError):
            raise Unreachable("certsas answered 200 without a token of the documented form"
                              ) from None

    @property
    def resource_url(self) -> str:
        """The container or blob URL without the SAS."""
        return self.url.split("?", 1)[0]

    @property
    def signature(self) -> str:
        return signature_of(self.token)


def signature_of(query: str) -> str:
    """The ``sig`` value of a SAS query string or a URL carrying one ('' if none)."""
    text = urlsplit(query).query if "://" in query else query.lstrip("?")
    return parse_qs(text).get("sig", [""])[0]
