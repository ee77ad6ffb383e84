"""Several worker processes, each with its own broker, against one Azurite.

As the Functions host runs ``FUNCTIONS_WORKER_PROCESS_COUNT`` Python workers: every
token answered is on record exactly once, under its own request ID, whichever process
issued it and however the group commit batched it.
"""

from __future__ import annotations

import pytest
from azure.data.tables import TableServiceClient

from bench.scale import Shape, count_batches, run_processes, summary
from tests.support.azurite import Azurite
from tests.support.pki import Pki
from tests.support.stack import app_env, build_stack, forwarded

PROCESSES, THREADS, PER_PROCESS = 2, 8, 25


@pytest.mark.slow
def test_every_token_from_every_process_has_exactly_one_audit_record(
        monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki,
        fresh_tables: tuple[str, str]) -> None:
    env = app_env(azurite, pki.trust_bundle, fresh_tables, REGISTRY_CACHE_SECONDS="30")
    stack = build_stack(monkeypatch, env, azurite.connection_string)
    stack.register(pki.client, permissions="rl")
    shape = Shape(processes=PROCESSES, threads=THREADS, per_process=PER_PROCESS, seconds=120)

    results = run_processes(env, forwarded(pki.client), shape)

    assert [r.first_error for r in results] == [None] * PROCESSES
    assert [len(r.latencies_ns) for r in results] == [PER_PROCESS] * PROCESSES
    issued = [rid for r in results for rid in r.request_ids]
    warmup = PROCESSES * THREADS * shape.warmup
    assert len(issued) == PROCESSES * PER_PROCESS + warmup
    assert len(set(issued)) == len(issued)
    table = TableServiceClient.from_connection_string(azurite.connection_string)
    records = list(table.get_table_client(env["AUDIT_TABLE_NAME"]).list_entities())
    assert sorted(r["RequestId"] for r in records) == sorted(issued)
    # The batches the group commit wrote cover the timed tokens and nothing else.
    figures = summary(results, shape)
    assert figures["tokens"] == PROCESSES * PER_PROCESS
    assert sum(int(size) * count for size, count in figures["batch_sizes"].items()) \
        == PROCESSES * PER_PROCESS


def test_batch_counting_fails_loudly_without_an_inner_sink() -> None:
    class Broker:
        audit = object()

    with pytest.raises(RuntimeError, match="no inner sink"):
        count_batches(Broker())
