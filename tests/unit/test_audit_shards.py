"""Which shard of a day an audit write goes to (SPEC §5): balanced by records, per write."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from certsas.audit import AuditRecord, ShardPicker, audit_day, audit_entity, partition_key


def test_partition_keys_are_the_day_and_two_digits_and_sort_after_the_plain_day() -> None:
    assert partition_key("2026-11-01", 0) == "2026-11-01.00"
    assert partition_key("2026-11-01", 99) == "2026-11-01.99"
    assert "2026-11-01" < partition_key("2026-11-01", 0) < partition_key("2026-11-01", 99)
    assert partition_key("2026-11-01", 99) < "2026-11-02"


def test_the_day_is_the_utc_day() -> None:
    late = datetime(2026, 11, 1, 23, 30, tzinfo=UTC)
    record = AuditRecord(time=late.astimezone(), request_id="r", thumbprint="AB" * 32,
                         subject="CN=x", container="c", blob=None, permissions="r",
                         expires_on=late + timedelta(minutes=5), client_address=None,
                         signature_sha256="00" * 32)
    assert audit_day(record) == "2026-11-01"
    assert audit_entity(record, 7)["PartitionKey"] == "2026-11-01.07"


def test_uneven_writes_still_fill_the_shards_evenly() -> None:
    picker = ShardPicker(16)
    taken = [0] * 16
    sizes = random.Random(14).choices([1, 2, 5, 31, 100], k=2000)
    for size in sizes:
        taken[picker.pick(size)] += size
    # Each write goes to the least-filled shard, so no two differ by more than one write.
    assert max(taken) - min(taken) <= 100


def test_single_records_go_round() -> None:
    picker = ShardPicker(5)
    first = [picker.pick(1) for _ in range(5)]
    assert sorted(first) == [0, 1, 2, 3, 4]
    assert [picker.pick(1) for _ in range(5)] == first


@pytest.mark.parametrize("partitions", [0, 101])
def test_the_count_is_1_to_100(partitions: int) -> None:
    with pytest.raises(ValueError, match="1 to 100"):
        ShardPicker(partitions)
