"""bench.model: the scale model's arithmetic on a results file of the bench's shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.model import Deployment, main, mean_batch, model, per_instance

RESULTS = {
    "cpu": {"warm_us_per_token": 500.0, "floor_us_per_token": 200.0},
    "components": {"audit_insert": {"p50_us": 4000.0}},
    "scale": {"tokens_per_second": 900.0, "processes": 4, "mean_batch": 3.5},
}


def test_a_write_carries_every_waiting_thread_whatever_the_partitions() -> None:
    # The shard is picked per write, so partitions do not split a batch.
    assert mean_batch(16) == 16
    assert mean_batch(1) == 1
    assert mean_batch(400) == 100  # an entity-group transaction holds at most 100


def test_an_instance_serves_the_least_of_cpu_threads_and_audit_writer() -> None:
    d = Deployment(vcpus=2, processes=4, threads=16, audit_partitions=1)
    figures = per_instance(cpu_us=500, write_ms=4, d=d)
    assert figures["cpu_bound"] == pytest.approx(4000)  # 2 cores / 0.5 ms
    assert figures["thread_bound"] == pytest.approx(64 / 0.0045)
    assert figures["audit_writer_bound"] == pytest.approx(4 * 16 / 0.004)
    assert figures["tokens_per_second"] == pytest.approx(4000)
    # With a slow write and few threads, the threads bind, and the audit writer (which
    # carries every waiting thread's record) never binds before them.
    slow = per_instance(cpu_us=500, write_ms=40, d=Deployment(threads=4, audit_partitions=16))
    assert slow["tokens_per_second"] == slow["thread_bound"] == pytest.approx(16 / 0.0405)
    assert slow["audit_writer_bound"] > slow["thread_bound"]


def test_the_model_sizes_both_targets_and_orders_the_limits() -> None:
    figures = model(RESULTS, Deployment())
    assert figures["measured"]["azurite_insert_ms"] == 4.0
    for scenario in figures["scenarios"].values():
        rate = scenario["per_instance"]["tokens_per_second"]
        assert scenario["instances_needed"]["1000"] * rate >= 1000
        assert (scenario["instances_needed"]["10000"] - 1) * rate < 10_000
        breaks = [limit for _, limit in scenario["what_breaks_first"]]
        assert breaks == sorted(breaks)
        at = scenario["at_10000_tokens_per_second"]
        assert at["audit_entities_per_partition"] == 10_000 / 16
        assert at["account_requests"] == pytest.approx(at["audit_requests"] + at["registry_reads"])
    assert figures["scenarios"]["planning_write"]["write_ms"] == 15.0


def test_it_prints_the_model_of_a_results_file(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(RESULTS), encoding="utf-8")
    assert main([str(path)]) == 0
    printed = capsys.readouterr().out
    assert "instances for 1,000 tokens/s" in printed and "what breaks first" in printed
    assert main([str(path), "--json", "--audit-partitions", "1", "--threads", "6"]) == 0
    deployment = json.loads(capsys.readouterr().out)["deployment"]
    assert (deployment["audit_partitions"], deployment["threads"]) == (1, 6)
    with pytest.raises(SystemExit):
        main([str(path), "--processes", "11"])


def test_the_committed_results_file_has_what_the_model_reads() -> None:
    committed = Path(__file__).resolve().parents[2] / "bench" / "results.json"
    figures = model(json.loads(committed.read_text(encoding="utf-8")), Deployment())
    assert figures["scenarios"]["azurite_insert"]["per_instance"]["tokens_per_second"] > 0
