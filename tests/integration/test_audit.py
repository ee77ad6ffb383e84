"""The audit table sink against Azurite: group commit stores every record, loses none, and
spreads a day over its shards (SPEC §5) without splitting a transaction."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.data.tables import TableClient, TableServiceClient

from certsas.accounts import AZURITE_ACCOUNT, AZURITE_KEY
from certsas.audit import AuditRecord, GroupCommitAuditSink, TableAuditSink
from certsas.errors import DependencyUnavailable
from certsas.rotation import RotationRecord, TableRotationAudit
from certsas.tables import Connections, LeanTable, SharedKey
from tests.support.azurite import Azurite
from tests.support.lossy_proxy import LossyTableProxy

DAY = datetime(2026, 11, 23, 23, 59, 59, tzinfo=UTC)


def record(i: int, when: datetime = DAY) -> AuditRecord:
    return AuditRecord(time=when, request_id=f"req-{i}", thumbprint="AB" * 32, subject="CN=x",
                       container="reports", blob=None, permissions="r",
                       expires_on=when + timedelta(minutes=15), client_address=None,
                       signature_sha256=f"{i:064x}")


class GatedTable:
    """A real TableClient whose first write waits until ``waiting`` callers are queued."""

    def __init__(self, table: TableClient, sink: GroupCommitAuditSink | None = None,
                 waiting: int = 0) -> None:
        self.table = table
        self.sink = sink
        self.waiting = waiting
        self.calls: list[int] = []
        self.partitions: list[set[str]] = []  # the PartitionKeys of each write
        self.gate_open = False

    def _gate(self) -> None:
        if not self.gate_open and self.sink is not None:
            deadline = time.monotonic() + 10
            while len(self.sink._queue) < self.waiting and time.monotonic() < deadline:
                time.sleep(0.005)
            self.gate_open = True

    def get_entity(self, partition_key: str, row_key: str) -> Any:
        return self.table.get_entity(partition_key, row_key)

    def create_entity(self, entity: dict[str, Any]) -> Any:
        self._gate()
        self.calls.append(1)
        self.partitions.append({entity["PartitionKey"]})
        return self.table.create_entity(entity)

    def submit_transaction(self, operations: list[tuple[str, dict[str, Any]]]) -> Any:
        self._gate()
        self.calls.append(len(operations))
        self.partitions.append({entity["PartitionKey"] for _, entity in operations})
        return self.table.submit_transaction(operations)


@pytest.fixture
def table(azurite: Azurite, fresh_tables: tuple[str, str]) -> TableClient:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    return service.create_table(fresh_tables[1])


def test_concurrent_records_share_transactions_and_all_are_stored(table: TableClient) -> None:
    gated = GatedTable(table, waiting=31)
    sink = GroupCommitAuditSink(TableAuditSink(gated))  # type: ignore[arg-type]
    gated.sink = sink
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda i: sink.record(record(i)), range(32)))
    stored = {e["RequestId"] for e in table.list_entities()}
    assert stored == {f"req-{i}" for i in range(32)}
    # The first caller wrote alone while 31 queued; they went in one transaction.
    assert gated.calls == [1, 31]
    assert sink._queue == [] and sink._writing is False


def test_records_of_two_days_go_in_separate_transactions(table: TableClient) -> None:
    gated = GatedTable(table, waiting=10)
    sink = GroupCommitAuditSink(TableAuditSink(gated))  # type: ignore[arg-type]
    gated.sink = sink
    when = [DAY + timedelta(seconds=i % 2) for i in range(11)]  # 23:59:59 and 00:00:00
    with ThreadPoolExecutor(11) as pool:
        list(pool.map(lambda i: sink.record(record(i, when[i])), range(11)))
    assert len(list(table.list_entities())) == 11
    # One lone first write, then one transaction per day for the ten that queued.
    assert len(gated.calls) == 3
    assert gated.calls[0] == 1
    assert sum(gated.calls) == 11
    keys = {e["PartitionKey"] for e in table.list_entities()}
    assert {key[:10] for key in keys} == {"2026-11-23", "2026-11-24"}
    assert all(re.fullmatch(r"2026-11-2[34]\.(0\d|1[0-5])", key) for key in keys)
    assert all(len(p) == 1 for p in gated.partitions)


def test_a_failed_batch_refuses_every_caller_and_strands_none(table: TableClient,
                                                              azurite: Azurite) -> None:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    missing = service.get_table_client("NoSuchAuditTable")
    sink = GroupCommitAuditSink(TableAuditSink(missing))
    errors: list[str] = []

    def attempt(i: int) -> None:
        try:
            sink.record(record(i))
        except DependencyUnavailable as exc:
            errors.append(exc.code)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(attempt, range(24)))
    assert errors == ["dependency_unavailable"] * 24
    assert sink._writing is False


def test_an_unexpected_error_also_fails_closed() -> None:
    class Broken:
        def create_entity(self, entity: dict[str, Any]) -> None:
            raise RuntimeError("bug")

    sink = GroupCommitAuditSink(TableAuditSink(Broken()))  # type: ignore[arg-type]
    with pytest.raises(DependencyUnavailable):
        sink.record(record(1))


def test_single_caller_makes_a_plain_insert(table: TableClient) -> None:
    gated = GatedTable(table)
    sink = GroupCommitAuditSink(TableAuditSink(gated))  # type: ignore[arg-type]
    for i in range(3):
        sink.record(record(i))
    assert gated.calls == [1, 1, 1]


def test_no_waiter_is_left_behind_under_churn(table: TableClient) -> None:
    sink = GroupCommitAuditSink(TableAuditSink(table))
    count = 0
    lock = threading.Lock()

    def worker(offset: int) -> None:
        nonlocal count
        for i in range(25):
            sink.record(record(offset * 100 + i))
            with lock:
                count += 1

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert count == 300
    assert len(list(table.list_entities())) == 300


def test_a_days_records_spread_over_every_shard_and_still_share_transactions(
        table: TableClient) -> None:
    gated = GatedTable(table)
    sink = GroupCommitAuditSink(TableAuditSink(gated, partitions=16))  # type: ignore[arg-type]
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda i: sink.record(record(i)), range(1000)))
    per_partition = Counter(e["PartitionKey"] for e in table.list_entities())
    assert set(per_partition) == {f"2026-11-23.{n:02d}" for n in range(16)}
    assert sum(per_partition.values()) == 1000
    share = 1000 / 16
    assert max(per_partition.values()) <= 2 * share, per_partition
    assert min(per_partition.values()) >= share / 2, per_partition
    # Every write stayed in one partition, and concurrent records shared writes.
    assert all(len(p) == 1 for p in gated.partitions)
    assert sum(gated.calls) == 1000
    assert len(gated.calls) <= 1000 / 4, f"{len(gated.calls)} writes for 1000 records"


def test_single_inserts_take_the_shards_in_turn(table: TableClient) -> None:
    sink = TableAuditSink(table, partitions=4)
    for i in range(12):
        sink.record(record(i))
    per_partition = Counter(e["PartitionKey"] for e in table.list_entities())
    assert per_partition == {f"2026-11-23.{n:02d}": 3 for n in range(4)}


def test_one_partition_is_shard_00(table: TableClient) -> None:
    sink = TableAuditSink(table, partitions=1)
    sink.record(record(1))
    assert [e["PartitionKey"] for e in table.list_entities()] == ["2026-11-23.00"]


# --- a retried write that finds its own rows (SPEC §5) --------------------------------


def lean_table(endpoint: str, name: str) -> LeanTable:
    return LeanTable(endpoint, name, SharedKey(AZURITE_ACCOUNT, AZURITE_KEY),
                     Connections(endpoint, 5.0))


def sdk_table(endpoint: str, name: str) -> TableClient:
    connection = (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                  f"AccountKey={AZURITE_KEY};TableEndpoint={endpoint};")
    return TableServiceClient.from_connection_string(
        connection, retry_total=1, retry_backoff_factor=0.01).get_table_client(name)


@pytest.mark.parametrize(("client", "mode"), [("lean", "close"), ("lean", "timeout"),
                                              ("sdk", "timeout")])
@pytest.mark.parametrize("records", [1, 3])
def test_a_write_whose_answer_was_lost_is_written_once(
        azurite: Azurite, table: TableClient, client: str, mode: str, records: int) -> None:
    with LossyTableProxy(azurite.table_endpoint, mode=mode) as proxy:
        writer = (lean_table if client == "lean" else sdk_table)(proxy.endpoint, table.table_name)
        TableAuditSink(writer).write([record(i) for i in range(records)])
    # The first attempt was stored and its answer lost; the retry met its own rows (409).
    stored_status = 202 if records > 1 else 201 if client == "sdk" else 204
    assert [(status, fate) for _, status, fate in proxy.inserts] == [
        (stored_status, mode), (409 if records == 1 else 202, "forwarded")]
    stored = sorted(e["RequestId"] for e in table.list_entities())
    assert stored == [f"req-{i}" for i in range(records)]


@pytest.mark.parametrize(("client", "mode"), [("lean", "close"), ("sdk", "timeout")])
def test_a_rotation_record_whose_answer_was_lost_is_written_once(
        azurite: Azurite, table: TableClient, client: str, mode: str) -> None:
    """SPEC §5 holds for rotation records too: a failure here would answer 503 for a
    rotation that was registered, with its record in the table after all."""
    rotation = RotationRecord(time=DAY, request_id="req-rot", thumbprint="AB" * 32,
                              subject="CN=x", successor="CD" * 32,
                              successor_not_after=DAY + timedelta(days=90),
                              client_address=None, revocation="ocsp:good")
    with LossyTableProxy(azurite.table_endpoint, mode=mode) as proxy:
        writer = (lean_table if client == "lean" else sdk_table)(proxy.endpoint, table.table_name)
        TableRotationAudit(writer, partitions=4).record(rotation)
    assert [fate for *_, fate in proxy.inserts] == [mode, "forwarded"]
    (stored,) = table.list_entities()
    assert (stored["Kind"], stored["RequestId"], stored["Successor"]) == (
        "rotation", "req-rot", "CD" * 32)


def test_group_commit_callers_are_answered_after_a_lost_batch(azurite: Azurite,
                                                              table: TableClient) -> None:
    with LossyTableProxy(azurite.table_endpoint, losses=100) as proxy:
        sink = GroupCommitAuditSink(TableAuditSink(lean_table(proxy.endpoint, table.table_name)))
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: sink.record(record(i)), range(64)))
    lost = [path for path, _, fate in proxy.inserts if fate == "close"]
    assert len(lost) >= 2 and any(path.endswith("$batch") for path in lost), proxy.inserts
    assert sorted(e["RequestId"] for e in table.list_entities()) == sorted(
        f"req-{i}" for i in range(64))


class Squatter:
    """Writes a different record at the keys of the insert it fronts, then inserts: the
    Table's 409 is real, and the row is not ours."""

    def __init__(self, table: TableClient, lean: LeanTable) -> None:
        self.table = table
        self.lean = lean

    def get_entity(self, partition_key: str, row_key: str) -> Any:
        return self.lean.get_entity(partition_key, row_key)

    def create_entity(self, entity: dict[str, Any]) -> None:
        self.table.create_entity({**entity, "SignatureSha256": "someone else's"})
        self.lean.create_entity(entity)

    def submit_transaction(self, operations: list[tuple[str, dict[str, Any]]]) -> None:
        *_, (_, last) = operations
        self.table.create_entity({**last, "Thumbprint": "CD" * 32})
        self.lean.submit_transaction(operations)


@pytest.mark.parametrize("records", [1, 3])
def test_a_conflict_with_a_row_that_is_not_ours_is_a_failure(
        azurite: Azurite, table: TableClient, records: int) -> None:
    squatter = Squatter(table, lean_table(azurite.table_endpoint, table.table_name))
    with pytest.raises(DependencyUnavailable, match="ResourceExistsError"):
        TableAuditSink(squatter).write([record(i) for i in range(records)])  # type: ignore[arg-type]
    assert len(list(table.list_entities())) == 1  # the squatter's; none of ours


def test_the_read_back_costs_nothing_on_the_hot_path(azurite: Azurite, table: TableClient) -> None:
    """A write without a 409 makes one request; the read-back runs only after one."""
    with LossyTableProxy(azurite.table_endpoint, losses=0) as proxy:
        TableAuditSink(lean_table(proxy.endpoint, table.table_name)).write([record(1)])
    assert [fate for *_, fate in proxy.inserts] == ["forwarded"]
