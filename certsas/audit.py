"""Audit (SPEC §5): one structured log line per decision, one table record per token.

The log line and the record hold who, what and until when; never the token, its
signature or the certificate. The record keeps a SHA-256 of the signature so an
operator can tie a token seen elsewhere back to its issuance.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from azure.core.exceptions import AzureError, HttpResponseError

from certsas.clock import iso
from certsas.errors import DependencyUnavailable
from certsas.tables import HotTable, stored_as_sent

logger = logging.getLogger("certsas.audit")


@dataclass(frozen=True)
class AuditRecord:
    time: datetime
    request_id: str
    thumbprint: str
    subject: str
    container: str
    blob: str | None
    permissions: str
    expires_on: datetime
    client_address: str | None
    signature_sha256: str
    # How revocation was settled: "ocsp:good", "crl:good", "soft_failed", "not_checked".
    revocation: str = ""
    # The prefix of the registration's grant that allowed it ("" for none; SPEC §4).
    prefix: str = ""


class AuditSink(Protocol):
    """Where token records go; must raise rather than lose one."""

    def record(self, record: AuditRecord) -> None: ...


def audit_day(record: AuditRecord) -> str:
    """The UTC day of a record, ``YYYY-MM-DD``: what a batch of records has in common."""
    return utc_day(record.time)


def utc_day(when: datetime) -> str:
    """``YYYY-MM-DD`` of ``when`` in UTC: the day part of an audit PartitionKey."""
    return f"{when.astimezone(UTC):%Y-%m-%d}"


def partition_key(day: str, shard: int) -> str:
    """``YYYY-MM-DD.NN`` (SPEC §5); sorts after the plain ``YYYY-MM-DD`` of earlier versions."""
    return f"{day}.{shard:02d}"


def audit_entity(record: AuditRecord, shard: int) -> dict[str, Any]:
    """The Table entity for a record: PartitionKey the UTC day and ``shard``, RowKey a UUID."""
    return {
        "PartitionKey": partition_key(audit_day(record), shard),
        "RowKey": uuid.uuid4().hex,
        "IssuedAt": record.time,
        "RequestId": record.request_id,
        "Thumbprint": record.thumbprint,
        "Subject": record.subject,
        "Container": record.container,
        "Blob": record.blob or "",
        "Permissions": record.permissions,
        "ExpiresOn": record.expires_on,
        "ClientAddress": record.client_address or "",
        "SignatureSha256": record.signature_sha256,
        "Revocation": record.revocation,
        "GrantPrefix": record.prefix,
    }


class ShardPicker:
    """Which of ``partitions`` shards the next write goes to: the one that has taken the
    fewest records from this process so far (ties: the next in turn from a random start).

    Why per write and not per record (e.g. from the RowKey): a write is one insert or one
    entity-group transaction, and a transaction must stay in one partition. Picking the
    shard per record would scatter a batch of concurrent records over every shard and
    shrink the group commit's transactions about ``partitions``-fold. Picking it per
    write keeps the batch whole, and balancing by records (not by writes) keeps one day's
    shards within one batch (at most ``MAX_BATCH`` records) of each other in this process,
    whatever the callers ask for and however the batches vary in size. Every instance
    balances its own writes, so the sum over instances is balanced too; the random start
    keeps instances that start together from all beginning with shard 00.
    """

    def __init__(self, partitions: int) -> None:
        if not 1 <= partitions <= 100:
            raise ValueError("partitions must be 1 to 100")
        self._taken = [0] * partitions
        self._turn = secrets.randbelow(partitions)
        self._lock = threading.Lock()

    def pick(self, records: int) -> int:
        """The shard for a write of ``records`` records, counted as taken."""
        with self._lock:
            n = len(self._taken)
            order = [(self._turn + i) % n for i in range(n)]
            shard = min(order, key=lambda s: self._taken[s])
            self._taken[shard] += records
            self._turn = (shard + 1) % n
            return shard


class TableAuditSink:
    """Audit records in an Azure Table, one request per call.

    :meth:`write` stores records of one UTC day all or nothing, in one shard of that day
    (:class:`ShardPicker`): one insert, or one entity-group transaction (the service's
    limit is 100 entities, all in one partition).

    A write answered 409 is read back (:func:`insert_once`): its own rows, stored while
    the answer was lost, are written once; anything else in those rows, or rows missing,
    is a failure.
    """

    MAX_BATCH = 100

    def __init__(self, table: HotTable, partitions: int = 16) -> None:
        self._table = table
        self._shards = ShardPicker(partitions)

    def record(self, record: AuditRecord) -> None:
        self.write([record])

    def write(self, records: Sequence[AuditRecord]) -> None:
        """Store every record or none; ``DependencyUnavailable`` if the Table says no."""
        if len({audit_day(r) for r in records}) != 1 or len(records) > self.MAX_BATCH:
            raise ValueError("a write holds 1 to MAX_BATCH records of one day")
        shard = self._shards.pick(len(records))
        try:
            insert_once(self._table, [audit_entity(r, shard) for r in records])
        except AzureError as exc:
            raise DependencyUnavailable(f"audit record not written: {type(exc).__name__}") from None


def insert_once(table: HotTable, entities: Sequence[dict[str, Any]]) -> None:
    """One insert, or one entity-group transaction for several (one partition, all or none).

    Answered 409, it reads the rows back: their RowKeys are fresh UUIDs, so rows holding
    exactly what was sent are its own first attempt, stored while the answer was lost (the
    client retried), and count as written, once (SPEC §5). Else the ``AzureError`` stands.
    """
    try:
        if len(entities) == 1:
            table.create_entity(entities[0])
        else:
            table.submit_transaction([("create", entity) for entity in entities])
    except AzureError as exc:
        # One row tells: a transaction is stored whole or not at all, and a row at a fresh
        # key holding what we sent can only be ours. One read keeps the wait after a lost
        # batch answer to a single round trip, not one per record.
        if _conflict(exc) and stored_as_sent(table, entities[:1]):
            logger.info("audit write answered 409 and found its own %d record(s): "
                        "written once", len(entities))
            return
        raise


def _conflict(error: AzureError) -> bool:
    """A 409: ``ResourceExistsError`` from an insert, ``TableTransactionError`` from the
    SDK's transaction, ``ResourceExistsError`` from the lean client's."""
    return isinstance(error, HttpResponseError) and error.status_code == 409


class _Pending:
    """One caller's record, waiting for the batch that carries it."""

    def __init__(self, record: AuditRecord) -> None:
        self.record = record
        self.day = audit_day(record)
        self.done = threading.Event()
        self.lead = False  # woken to write the next batch, not because it was written
        self.error: str | None = None  # why the batch failed; each caller raises its own


class GroupCommitAuditSink:
    """Group commit in front of a :class:`TableAuditSink`: concurrent records share a write.

    Every caller returns only once its own record is stored. One caller at a time, the
    leader, writes; records that arrive meanwhile queue up and are stored together (one
    UTC day, at most ``MAX_BATCH``; the inner sink puts the whole batch in one shard of
    that day) by the next leader, so under load the Table sees one request per batch
    rather than one per token, and alone a caller makes a single insert. If a batch
    fails, every caller in it gets ``dependency_unavailable``.

    Hand-off rules, enforced in :meth:`record` and :meth:`_lead_until`:

    - the first caller to find no leader becomes it (``_writing`` set under the lock);
    - a leader writes batches, oldest record first, until its own record is written;
    - it then hands the lead to the oldest queued caller (waking it with ``lead`` set),
      or clears ``_writing`` when the queue is empty; so no record waits without a leader;
    - a write never raises into the leader (:meth:`_write`), so every caller in a batch is
      always released, even on a bug.
    """

    MAX_BATCH = TableAuditSink.MAX_BATCH

    def __init__(self, inner: TableAuditSink) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._writing = False

    def record(self, record: AuditRecord) -> None:
        mine = _Pending(record)
        with self._lock:
            self._queue.append(mine)
            lead = not self._writing
            self._writing = True
        while not lead:
            mine.done.wait()
            if not mine.lead:
                break
            mine.done.clear()
            mine.lead, lead = False, True
        if lead:
            self._lead_until(mine)
        if mine.error is not None:
            raise DependencyUnavailable(mine.error)

    def _lead_until(self, mine: _Pending) -> None:
        """Write batches, oldest first, until ``mine`` is stored; then hand the lead on."""
        while not mine.done.is_set():
            with self._lock:
                batch = self._take_batch()
            self._write(batch)
        with self._lock:
            if self._queue:
                successor = self._queue[0]
                successor.lead = True
                successor.done.set()
            else:
                self._writing = False

    def _take_batch(self) -> list[_Pending]:
        day = self._queue[0].day
        batch = [p for p in self._queue if p.day == day][: self.MAX_BATCH]
        taken = set(map(id, batch))
        self._queue = [p for p in self._queue if id(p) not in taken]
        return batch

    def _write(self, batch: list[_Pending]) -> None:
        """Store a batch; never raises, so every waiter in it is always released."""
        error = None
        try:
            self._inner.write([pending.record for pending in batch])
        except DependencyUnavailable as exc:
            error = exc.detail
        except Exception as exc:  # a bug must not strand the other callers: fail closed
            error = f"audit write failed unexpectedly: {type(exc).__name__}"
        for pending in batch:
            pending.error = error
            pending.done.set()


@dataclass(frozen=True)
class Decision:
    """One line of the decision log."""

    request_id: str
    outcome: str  # "issued", "rotated", "refused", or "error" (a bug: answered 500)
    thumbprint: str | None = None
    subject: str | None = None
    error: str | None = None
    reason: str | None = None
    container: str | None = None
    blob: str | None = None
    permissions: str | None = None
    expires_on: datetime | None = None
    revocation: str | None = None
    client_address: str | None = None
    prefix: str | None = None  # the prefix of the grant used, when it has one
    action: str | None = None  # "rotate" on /api/rotate's lines; None on the token path's
    successor: str | None = None  # /api/rotate: the successor's SHA-256 thumbprint


def log_decision(decision: Decision) -> None:
    fields = {key: value for key, value in decision.__dict__.items() if value is not None}
    if decision.expires_on is not None:
        fields["expires_on"] = iso(decision.expires_on)
    level = {"issued": logging.INFO, "rotated": logging.INFO,
             "refused": logging.WARNING}.get(decision.outcome, logging.ERROR)
    logger.log(level, "certsas decision %s", json.dumps(fields, sort_keys=True),
               extra={"certsas": fields})
