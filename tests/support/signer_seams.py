"""Stand-ins behind the signer's seams (certsas.runtime.SignerClients): an in-memory table
for the signing epoch row, and clients that hand build_signer a stand-in delegation key
source where Entra ID would issue keys (Azurite cannot)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from azure.core.exceptions import ResourceNotFoundError, ServiceRequestError

from certsas.sas import DelegationKeySource
from certsas.tables import EntityReader


class MemoryTable:
    """A table of entities, counting point reads; can be made to fail or to wait."""

    def __init__(self) -> None:
        self.entities: dict[tuple[str, str], dict[str, Any]] = {}
        self.reads = 0
        self.fail = False
        self.gate: threading.Event | None = None

    def get_entity(self, partition_key: str, row_key: str) -> Mapping[str, Any]:
        if self.gate is not None:
            self.gate.wait(5)
        self.reads += 1
        if self.fail:
            raise ServiceRequestError("unreachable")
        try:
            return self.entities[(partition_key, row_key)]
        except KeyError:
            raise ResourceNotFoundError("Table read answered 404 ResourceNotFound") from None

    def upsert_entity(self, entity: dict[str, Any]) -> None:
        self.entities[(entity["PartitionKey"], entity["RowKey"])] = dict(entity)


class StandInKeyClients:
    """What build_signer asks the storage clients for: ``table(name)`` for the tables (the
    names asked are kept), and ``keys`` for user delegation keys."""

    def __init__(self, table: Callable[[str], EntityReader], keys: DelegationKeySource) -> None:
        self._table = table
        self._keys = keys
        self.tables_asked: list[str] = []

    def hot_table(self, name: str) -> EntityReader:
        self.tables_asked.append(name)
        return self._table(name)

    def blob_service(self) -> DelegationKeySource:
        return self._keys
