"""The signing epoch (SPEC §2b): when every user delegation key was last revoked.

``certsas revoke-tokens`` revokes the account's user delegation keys, then writes a
new epoch here. Each instance watches it and, when it changes, drops its delegation
key and fetches a new one before it signs again (certsas.sas): a key from before the
revocation makes tokens that Storage refuses.

The epoch is one reserved entity in the registry table. Its PartitionKey starts with
``~``, which a SHA-256 thumbprint (uppercase hex) never holds, and its RowKey is not
the registrations' ``"certificate"``, so every registry read and scan (which ask for
that RowKey) pass it by.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from azure.core.exceptions import AzureError, ResourceNotFoundError

from certsas.clock import Clock, iso, system_clock
from certsas.tables import EntityReader

EPOCH_PARTITION = "~certsas"
EPOCH_ROW = "signing-epoch"

logger = logging.getLogger("certsas.epoch")


@dataclass(frozen=True)
class SigningEpoch:
    """One revocation: a fresh id (compared for equality only, so two operators revoking
    at once never write the same value) and when the keys were revoked."""

    epoch_id: str
    revoked_at: datetime

    @classmethod
    def new(cls, revoked_at: datetime) -> SigningEpoch:
        return cls(uuid.uuid4().hex, revoked_at)

    def to_entity(self) -> dict[str, Any]:
        return {"PartitionKey": EPOCH_PARTITION, "RowKey": EPOCH_ROW,
                "EpochId": self.epoch_id, "RevokedAt": self.revoked_at}


class EntityUpserter(Protocol):
    def upsert_entity(self, entity: dict[str, Any]) -> Any: ...


def write_epoch(table: EntityUpserter, epoch: SigningEpoch) -> None:
    """Record ``epoch`` (``revoke-tokens``, after the keys are revoked, never before)."""
    table.upsert_entity(epoch.to_entity())


def read_epoch_id(table: EntityReader) -> str:
    """The current epoch's id; ``""`` while no revocation was ever recorded.
    Storage errors (``AzureError``) are the caller's."""
    try:
        entity = table.get_entity(partition_key=EPOCH_PARTITION, row_key=EPOCH_ROW)
    except ResourceNotFoundError as exc:
        if getattr(exc, "error_code", None) == "TableNotFound":
            raise
        return ""
    return str(entity.get("EpochId") or "")


class EpochWatch:
    """How many epoch changes this instance has seen: a number that only grows.

    The epoch is read at most ``seconds`` apart (one point read). Requests do not wait
    for it: once half that time has passed, a request starts a read in the background
    and goes on; only when a whole period has passed without a read (no traffic, or the
    first request) does a request read it itself. A failed read is logged and keeps
    what was seen: the signer keeps its key, and no request fails for it.
    ``seconds == 0`` reads for every call, as ``REGISTRY_CACHE_SECONDS=0`` asks; calls
    that arrive while a read is under way share the one read that follows it.
    """

    def __init__(self, table: EntityReader, seconds: int, *, clock: Clock = system_clock) -> None:
        self._table = table
        self._period = timedelta(seconds=seconds)
        self._clock = clock
        self._seen: str | None = None
        self._generation = 0
        self._read_at: datetime | None = None
        self._started = 0  # reads begun so far; counted under ``_reading``
        self._reading = threading.Lock()  # one read at a time, foreground or background

    def generation(self) -> int:
        now = self._clock()
        read_at = self._read_at
        if read_at is None or now - read_at >= self._period:
            arrived = self._started
            with self._reading:
                # A read that began after this request arrived answers it as well as its own
                # would: without that, callers queued behind a slow read (seconds == 0)
                # would each wait for one more read in turn.
                if self._started == arrived and not self._fresh(self._period):
                    self._read(now)
        elif now - read_at >= self._period / 2 and self._reading.acquire(blocking=False):
            # The lock is handed to the thread, which releases it: one read in flight.
            try:
                threading.Thread(target=self._read_in_background, name="certsas-epoch",
                                 daemon=True).start()
            except BaseException:
                self._reading.release()
                raise
        return self._generation

    def _fresh(self, within: timedelta) -> bool:
        read_at = self._read_at
        return read_at is not None and self._clock() - read_at < within

    def _read_in_background(self) -> None:
        try:
            if not self._fresh(self._period / 2):
                self._read(self._clock())
        finally:
            self._reading.release()

    def _read(self, now: datetime) -> None:
        self._started += 1
        try:
            epoch_id = read_epoch_id(self._table)
        except AzureError as exc:
            logger.warning("certsas signing epoch read failed (%s); signing with the current "
                           "delegation key until the next read", type(exc).__name__)
        else:
            if epoch_id != self._seen:
                if self._seen is not None:
                    logger.warning("certsas signing epoch changed at %s: fetching a new user "
                                   "delegation key before signing again", iso(now))
                self._seen = epoch_id
                self._generation += 1
        self._read_at = now
