"""The registry of pre-shared client certificates, in Azure Table Storage (SPEC §4).

One entity per registration (:mod:`certsas.registration`), read by SHA-256 thumbprint
with one point read; the app reads it through :class:`CachedRegistry`, the CLI also
writes it (:class:`TableRegistry`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Protocol

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from certsas.cache import ExpiringLru
from certsas.clock import Clock, system_clock
from certsas.errors import CertificateNotRegistered, DependencyUnavailable
from certsas.registration import ROW_KEY, Registration
from certsas.tables import EntityReader


@dataclass(frozen=True)
class Unreadable:
    """A registry entity that does not parse: its key and why (an exception type only)."""

    thumbprint: str
    reason: str



class Registry(Protocol):
    """Looks up a registration by SHA-256 thumbprint."""

    def get(self, thumbprint: str) -> Registration | None: ...


class TableRegistryReader:
    """What the app does with the registry table: one point read per lookup."""

    def __init__(self, table: EntityReader) -> None:
        self._reader = table

    def get(self, thumbprint: str) -> Registration | None:
        try:
            entity = self._reader.get_entity(partition_key=thumbprint, row_key=ROW_KEY)
        except ResourceNotFoundError as exc:
            if getattr(exc, "error_code", None) == "TableNotFound":
                raise DependencyUnavailable("registry table does not exist") from None
            return None
        except AzureError as exc:
            raise DependencyUnavailable(f"registry read failed: {type(exc).__name__}") from None
        try:
            return Registration.from_entity(dict(entity))
        except (KeyError, ValueError, TypeError) as exc:
            raise CertificateNotRegistered(f"registration entity is malformed: {exc!r}") from None


class TableRegistry(TableRegistryReader):
    """The registry in one Azure Table (the SDK's client): read by the app, written by the CLI."""

    def __init__(self, table: TableClient) -> None:
        super().__init__(table)
        self._table = table

    def add(self, registration: Registration) -> None:
        """Insert; raises ``ResourceExistsError`` if the thumbprint is registered."""
        self._table.create_entity(registration.to_entity())

    def put(self, registration: Registration) -> None:
        self._table.upsert_entity(registration.to_entity(), mode=UpdateMode.REPLACE)

    def find(self, thumbprint: str) -> Registration | None:
        """By SHA-256 (a point read) or by SHA-1, the portal's thumbprint (a query)."""
        if len(thumbprint) == 64:
            return self.get(thumbprint)
        query = "RowKey eq @row and ThumbprintSha1 eq @sha1"
        for entity in self._table.query_entities(
                query, parameters={"row": ROW_KEY, "sha1": thumbprint}):
            return Registration.from_entity(dict(entity))
        return None

    def scan(self) -> Iterator[Registration | Unreadable]:
        """Every registration; an entity that does not parse is an :class:`Unreadable`
        rather than the end of the scan (the expiry check and ``list`` read on past it).
        Storage errors (``AzureError``) are the caller's to handle."""
        for entity in self._table.query_entities("RowKey eq @row", parameters={"row": ROW_KEY}):
            try:
                yield Registration.from_entity(dict(entity))
            except (KeyError, ValueError, TypeError) as exc:
                yield Unreadable(str(entity.get("PartitionKey", "")), type(exc).__name__)

    def set_enabled(self, thumbprint: str, enabled: bool) -> Registration:
        current = self.find(thumbprint)
        if current is None:
            raise KeyError(thumbprint)
        updated = replace(current, enabled=enabled)
        self.put(updated)
        return updated

    def remove(self, thumbprint: str) -> Registration:
        current = self.find(thumbprint)
        if current is None:
            raise KeyError(thumbprint)
        self._table.delete_entity(partition_key=current.thumbprint, row_key=ROW_KEY)
        return current


class CachedRegistry:
    """Reuses reads, hits and misses alike, for ``seconds``; bounded and thread-safe.

    A disabled or removed registration therefore takes effect within ``seconds``
    (``REGISTRY_CACHE_SECONDS``); failures are never cached.
    """

    def __init__(self, inner: Registry, seconds: int, *, clock: Clock = system_clock,
                 max_entries: int = 4096) -> None:
        self._inner = inner
        self._ttl = timedelta(seconds=seconds)
        self._clock = clock
        # A 1-tuple, so that a cached miss (None) differs from nothing cached.
        self._cache: ExpiringLru[str, tuple[Registration | None]] = ExpiringLru(max_entries)

    def get(self, thumbprint: str) -> Registration | None:
        if self._ttl <= timedelta(0):
            return self._inner.get(thumbprint)
        now = self._clock()
        cached = self._cache.get(thumbprint, now)
        if cached is not None:
            return cached[0]
        registration = self._inner.get(thumbprint)
        self._cache.put(thumbprint, (registration,), now + self._ttl)
        return registration
