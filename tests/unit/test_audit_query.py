"""``certsas audit``'s times and the query it builds: always a PartitionKey range of days."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta, timezone

import pytest

from certsas.cli.audit import When, build_query, when_arg

NOW = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("24h", NOW - timedelta(hours=24)),
    ("90m", NOW - timedelta(minutes=90)),
    ("7d", NOW - timedelta(days=7)),
    ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
    ("2026-11-01T12:00:00Z", datetime(2026, 11, 1, 12, tzinfo=UTC)),
    ("2026-11-01T12:00:00+02:00", datetime(2026, 11, 1, 10, tzinfo=UTC)),
])
def test_times_are_ago_a_day_or_an_instant(text: str, expected: datetime) -> None:
    assert when_arg(text).resolve(NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "24", "-1h", "2026-13-01", "5y", ""])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="is not a time"):
        when_arg(text)


def test_no_until_means_now() -> None:
    assert When().resolve(NOW) == NOW


def test_a_day_range_reads_only_its_days_partitions() -> None:
    query = build_query(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC))
    assert query.filter == ("PartitionKey ge @first_day and PartitionKey lt @day_after and "
                            "IssuedAt ge @since and IssuedAt lt @until")
    # 1 and 2 November, plain keys and shards alike; 3 November is not read.
    assert query.parameters["first_day"] == "2026-11-01"
    assert query.parameters["day_after"] == "2026-11-03"
    assert query.parameters["since"] == datetime(2026, 11, 1, tzinfo=UTC)


def test_an_end_inside_a_day_reads_that_day_too() -> None:
    query = build_query(NOW - timedelta(hours=24), NOW)
    assert (query.parameters["first_day"], query.parameters["day_after"]) == (
        "2026-11-22", "2026-11-24")


def test_days_are_utc_days() -> None:
    east = timezone(timedelta(hours=5))
    query = build_query(datetime(2026, 11, 2, 3, tzinfo=east), datetime(2026, 11, 2, 6, tzinfo=east))
    assert (query.parameters["first_day"], query.parameters["day_after"]) == (
        "2026-11-01", "2026-11-03")


def test_filters_are_parameters_never_pasted_in() -> None:
    query = build_query(NOW - timedelta(days=1), NOW, thumbprint="AB" * 32, container="reports")
    assert query.filter.endswith(" and Thumbprint eq @thumbprint and Container eq @container")
    assert query.parameters["thumbprint"] == "AB" * 32
    assert query.parameters["container"] == "reports"
    assert "reports" not in query.filter
