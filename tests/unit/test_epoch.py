"""The signing epoch watch: how often it reads, what it does with a change or a failure."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError

from certsas.epoch import EPOCH_PARTITION, EPOCH_ROW, EpochWatch, SigningEpoch, write_epoch
from certsas.registration import ROW_KEY
from tests.support.clock import ManualClock
from tests.support.signer_seams import MemoryTable

START = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


def wait_for(predicate: Any) -> None:
    deadline = time.monotonic() + 5
    while not predicate():
        assert time.monotonic() < deadline, "the background read never landed"
        time.sleep(0.005)


def test_the_reserved_keys_cannot_be_a_registration() -> None:
    entity = SigningEpoch.new(START).to_entity()
    assert (entity["PartitionKey"], entity["RowKey"]) == (EPOCH_PARTITION, EPOCH_ROW)
    assert not all(ch in "0123456789ABCDEF" for ch in EPOCH_PARTITION)  # never a thumbprint
    assert EPOCH_ROW != ROW_KEY  # registry reads and scans ask for RowKey "certificate"


def test_reads_once_per_period_whatever_the_traffic() -> None:
    table, clock = MemoryTable(), ManualClock(START)
    watch = EpochWatch(table, 30, clock=clock)
    first = watch.generation()
    for _ in range(1000):
        assert watch.generation() == first
    assert table.reads == 1
    clock.advance(31)
    watch.generation()
    assert table.reads == 2


def test_a_change_raises_the_generation_and_sameness_does_not() -> None:
    table, clock = MemoryTable(), ManualClock(START)
    watch = EpochWatch(table, 30, clock=clock)
    before = watch.generation()
    clock.advance(30)
    assert watch.generation() == before  # read again, same (absent) epoch
    write_epoch(table, SigningEpoch.new(START))
    clock.advance(30)
    assert watch.generation() == before + 1
    clock.advance(30)
    assert watch.generation() == before + 1


def test_the_read_runs_ahead_in_the_background_so_requests_do_not_wait() -> None:
    table, clock = MemoryTable(), ManualClock(START)
    watch = EpochWatch(table, 30, clock=clock)
    before = watch.generation()
    write_epoch(table, SigningEpoch.new(START))
    table.gate = threading.Event()  # the next read blocks until the test lets it go
    clock.advance(16)  # past half the period: a request starts a read and goes on
    assert watch.generation() == before
    table.gate.set()
    wait_for(lambda: table.reads == 2)
    wait_for(lambda: watch.generation() == before + 1)
    assert table.reads == 2  # and that read counts: no second one before the period is out


def test_a_failed_read_keeps_what_was_seen_and_is_logged(caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    table, clock = MemoryTable(), ManualClock(START)
    watch = EpochWatch(table, 30, clock=clock)
    before = watch.generation()
    table.fail = True
    clock.advance(31)
    with caplog.at_level(logging.WARNING, logger="certsas.epoch"):
        assert watch.generation() == before  # no exception: the request goes on
    assert "signing epoch read failed (ServiceRequestError)" in caplog.text
    table.fail = False
    write_epoch(table, SigningEpoch.new(START))
    clock.advance(31)
    assert watch.generation() == before + 1


def test_zero_seconds_reads_every_time() -> None:
    table = MemoryTable()
    watch = EpochWatch(table, 0, clock=ManualClock(START))
    for _ in range(5):
        watch.generation()
    assert table.reads == 5


def test_a_missing_table_is_a_failed_read_not_an_absent_epoch() -> None:
    class NoTable(MemoryTable):
        def get_entity(self, partition_key: str, row_key: str) -> Mapping[str, Any]:
            error = ResourceNotFoundError("Table read answered 404 TableNotFound")
            error.error_code = "TableNotFound"  # type: ignore[attr-defined]
            raise error

    watch = EpochWatch(NoTable(), 30, clock=ManualClock(START))
    assert watch.generation() == 0  # nothing seen yet, and no exception


def test_concurrent_requests_start_one_background_read() -> None:
    table, clock = MemoryTable(), ManualClock(START)
    watch = EpochWatch(table, 30, clock=clock)
    watch.generation()
    table.gate = threading.Event()
    clock.advance(20)
    callers = [threading.Thread(target=watch.generation) for _ in range(32)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(5)  # none waits for the read: the gate is still shut
    assert not any(caller.is_alive() for caller in callers)
    table.gate.set()
    wait_for(lambda: table.reads == 2)
    time.sleep(0.05)
    watch.generation()
    assert table.reads == 2


def test_zero_seconds_callers_waiting_on_a_slow_read_share_the_next_one() -> None:
    """With ``seconds == 0`` a caller that queued behind a slow read is answered by a read
    that began after it arrived, rather than each queued caller reading in turn."""
    class SlowTable(MemoryTable):
        entered = threading.Event()

        def get_entity(self, partition_key: str, row_key: str) -> Mapping[str, Any]:
            self.entered.set()
            return super().get_entity(partition_key, row_key)

    table = SlowTable()
    table.gate = threading.Event()
    watch = EpochWatch(table, 0)
    first = threading.Thread(target=watch.generation)
    first.start()
    assert table.entered.wait(5)  # the first read is under way, held at the gate
    queued = [threading.Thread(target=watch.generation) for _ in range(8)]
    for caller in queued:
        caller.start()
    time.sleep(0.1)  # all eight wait for the read in flight
    table.gate.set()
    for caller in [first, *queued]:
        caller.join(5)
    assert not any(caller.is_alive() for caller in [first, *queued])
    assert table.reads == 2  # the first, and one for all who arrived during it
