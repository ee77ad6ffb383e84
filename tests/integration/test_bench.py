"""The benchmark runs end to end (``--smoke``) and writes JSON of the documented shape.

Only the shape is checked: keys present, figures positive, no errors. Never a timing.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench import grants, rotate, rounds

ROOT = Path(__file__).resolve().parent.parent.parent
LOAD_KEYS = {"requests", "threads", "errors", "seconds", "rps", "p50_us", "p95_us", "p99_us",
             "mean_us", "max_us", "ocsp_requests"}
STEP_KEYS = LOAD_KEYS - {"ocsp_requests"}
COMPONENTS = {"header_decode_parse_thumbprint", "parse_thumbprint", "chain_verify", "sas_sign",
              "table_point_read", "audit_insert", "ocsp_round_trip"}
COLD_FIGURES = ("import_function_app_ms", "first_token_ms", "app_process_ms",
                "bare_dependency_import_ms", "own_import_ms")


def run_bench(out: Path, *flags: str) -> tuple[dict[str, Any], str]:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", *flags, "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    document: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return document, completed.stdout


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    document, stdout = run_bench(tmp_path_factory.mktemp("bench") / "results.json")
    assert "profile of one warm request" in stdout
    assert "cumulative" in stdout
    assert "interleaved rounds: median" in stdout
    return document


def positive_load(row: dict[str, Any], keys: set[str], *, threads: int) -> None:
    assert keys <= row.keys(), keys - row.keys()
    assert row["errors"] == 0, row.get("first_error")
    assert row["threads"] == threads
    assert row["requests"] > 0
    for key in ("seconds", "rps", "p50_us", "p95_us", "p99_us", "mean_us", "max_us"):
        assert row[key] > 0, key
    assert row["p50_us"] <= row["p95_us"] <= row["p99_us"] <= row["max_us"]


@pytest.mark.slow
def test_token_loads_have_rates_percentiles_and_no_errors(results: dict[str, Any]) -> None:
    assert results["smoke"] is True
    for design in ("warm", "naive"):
        positive_load(results[design]["single"], LOAD_KEYS, threads=1)
        positive_load(results[design]["threads_8"], LOAD_KEYS, threads=8)
    for row in results["diagnostics"].values():
        positive_load(row, LOAD_KEYS, threads=1)
    # Shape of the caching, not a timing: warm answers come from the OCSP cache.
    assert results["warm"]["single"]["ocsp_requests"] == 0
    assert results["naive"]["single"]["ocsp_requests"] >= results["naive"]["single"]["requests"]


@pytest.mark.slow
def test_floor_and_components_are_measured(results: dict[str, Any]) -> None:
    positive_load(results["floor"], STEP_KEYS, threads=1)
    assert set(results["components"]) == COMPONENTS
    for row in results["components"].values():
        positive_load(row, STEP_KEYS, threads=1)


@pytest.mark.slow
def test_cold_start_has_medians_of_its_runs(results: dict[str, Any]) -> None:
    cold = results["cold_start"]
    assert cold["errors"] == 0
    assert cold["runs"] == 2
    for key in COLD_FIGURES:
        assert cold[key] > 0, key
    assert len(cold["samples_import_function_app_ms"]) == cold["runs"]
    assert len(cold["samples_bare_dependency_import_ms"]) == cold["runs"]


@pytest.mark.slow
def test_top_level_ratios_and_targets(results: dict[str, Any]) -> None:
    for key in ("warm_over_floor", "naive_over_warm", "naive_over_warm_8_threads",
                "naive_over_warm_without_audit_write", "warm_over_floor_without_audit_write",
                "import_over_deps"):
        assert isinstance(results[key], float | int) and results[key] > 0, key
    assert set(results["targets"]) == {"warm_over_floor", "naive_over_warm", "import_over_deps",
                                       "errors_at_8_threads", "warm_over_floor_plus_insert",
                                       "cpu_per_token_over_floor",
                                       "scale_audit_one_record_per_token",
                                       "grants_20_minus_1_p50_ms"}
    for target in results["targets"].values():
        assert isinstance(target["met"], bool)
    assert results["targets"]["errors_at_8_threads"]["reached"] == 0
    assert {"python", "cpus", "platform"} <= results["machine"].keys()
    assert results["counts"] == "smoke" and results["elapsed_seconds"] > 0
    assert results["plan"]["cold_runs"] == 2


def test_crl_figures_have_their_shape(results: dict[str, Any]) -> None:
    crl = results["crl"]
    assert crl["entries"] > 0 and crl["crl_bytes"] > 0
    assert crl["first_use_median_ms"] > 0 and len(crl["first_use_ms"]) == 3
    assert crl["memory_tracemalloc_peak_mb"] > 0
    for key in ("warm_token_p50_us", "warm_token_without_audit_write_p50_us"):
        assert crl[key]["revocation_off"] > 0 and crl[key]["crl"] > 0
    assert crl["warm_crl_check_alone_p50_us"] > 0
    # Every warm token was answered from the one cached CRL: no download on the warm path.
    assert crl["downloads_during_warm_runs"] == 1


@pytest.mark.slow
def test_cpu_per_token_and_the_multi_process_load_are_reported(results: dict[str, Any]) -> None:
    assert results["cpu"]["warm_us_per_token"] > 0 and results["cpu"]["floor_us_per_token"] > 0
    for key in ("warm_over_floor_plus_insert", "cpu_per_token_over_floor"):
        assert results[key] > 0, key
    scale = results["scale"]
    assert (scale["processes"], scale["threads_per_process"], scale["errors"]) == (2, 4, 0)
    assert scale["tokens"] == 2 * results["plan"]["scale_tokens_per_process"]
    assert scale["tokens_per_second"] > 0 and 0 < scale["p50_us"] <= scale["p99_us"]
    audit = scale["audit"]
    assert audit["records"] == audit["distinct_records"] == audit["issued"] \
        == audit["records_matching_issued"]
    assert sum(int(size) * n for size, n in scale["batch_sizes"].items()) == scale["tokens"]
    assert results["targets"]["scale_audit_one_record_per_token"]["met"] is True


def spread_of_rounds(figure: dict[str, Any], rounds_run: int) -> None:
    assert len(figure["rounds"]) == rounds_run
    assert all(value > 0 for value in figure["rounds"])
    assert figure["min"] == min(figure["rounds"]) and figure["max"] == max(figure["rounds"])
    assert figure["min"] <= figure["median"] <= figure["max"]


def rounds_have_their_shape(figures: dict[str, Any], rounds_run: int) -> None:
    modes = ["free"] if rounds.pinning_unavailable() else ["free", "pinned"]
    if len(modes) == 1:
        assert figures["pinned"]["skipped"] == rounds.pinning_unavailable()
    else:
        assert figures["pinned"]["cpu"] == min(os.sched_getaffinity(0))
    for mode in modes:
        part = figures[mode]
        assert set(part["ratios"]) == set(rounds.RATIOS)
        for table in ("p50_us", "cpu_us_per_call", "gc_ms_while_timed"):
            assert set(part[table]) == set(rounds.SECTIONS), table
        for figure in [*part["ratios"].values(), *part["p50_us"].values(),
                       *part["cpu_us_per_call"].values()]:
            spread_of_rounds(figure, rounds_run)
        for figure in part["gc_ms_while_timed"].values():
            assert len(figure["rounds"]) == rounds_run and figure["min"] >= 0
        assert set(part["gc_collections_while_timed"]) == set(rounds.SECTIONS)


@pytest.mark.slow
def test_ratios_are_medians_of_interleaved_rounds_with_their_spread(results: dict[str, Any]
                                                                    ) -> None:
    figures = results["rounds"]
    assert figures["controls"] == rounds.CONTROLLED.to_json()
    assert figures["counts"] == results["plan"]["rounds"]
    rounds_have_their_shape(figures, results["plan"]["rounds"]["rounds"])
    free = figures["free"]["ratios"]
    for key in ("warm_over_floor_plus_insert", "cpu_per_token_over_floor"):
        assert results[key] == free[key]["median"]
        assert results["targets"][key]["reached"] == free[key]["median"]
        assert results["targets"][key]["spread"] == [free[key]["min"], free[key]["max"]]
        assert results["single_shot"][key] > 0
    assert (results["warm_over_floor_without_audit_write"]
            == free["warm_over_floor_without_audit_write"]["median"])


@pytest.mark.slow
def test_rounds_alone_and_without_their_controls(tmp_path: Path) -> None:
    document, stdout = run_bench(tmp_path / "rounds.json", "--rounds-only", "--uncontrolled")
    assert "interleaved rounds: median" in stdout
    assert "profile of one warm request" not in stdout
    assert set(document) == {"smoke", "counts", "machine", "elapsed_seconds", "plan", "rounds"}
    assert document["rounds"]["controls"] == rounds.UNCONTROLLED.to_json()
    rounds_have_their_shape(document["rounds"], document["plan"]["rounds"]["rounds"])


GRANT_SECTIONS = {f"{audit}/grants_{count}/{request}"
                  for audit in ("warm", "warm_without_audit_write") for count in (1, 20)
                  for request in ("container", "blob")}
DIFFERENCES = {"container", "blob", "container_without_audit_write", "blob_without_audit_write"}


@pytest.mark.slow
def test_one_grant_and_twenty_are_measured_side_by_side(results: dict[str, Any]) -> None:
    figures = results["grants"]
    assert (figures["grants"], figures["blob"]) == ([1, 20], "p18/data.csv")
    assert figures["counts"] == results["plan"]["grants"]
    rounds_run = figures["counts"]["rounds"]
    assert set(figures["p50_us"]) == set(figures["cpu_us_per_call"]) == GRANT_SECTIONS
    for figure in [*figures["p50_us"].values(), *figures["cpu_us_per_call"].values()]:
        spread_of_rounds(figure, rounds_run)
    assert figures["gc_collections_while_timed"] >= 0
    differences = figures["difference_20_minus_1_ms"]
    assert set(differences) == DIFFERENCES
    for key, figure in differences.items():
        audit = "warm" if key in ("container", "blob") else "warm_without_audit_write"
        request = key.split("_")[0]
        one, twenty = (figures["p50_us"][f"{audit}/grants_{count}/{request}"]["rounds"]
                       for count in (1, 20))
        # Round by round, of the same round's two p50s (those are rounded to 0.1 us).
        assert figure["rounds"] == pytest.approx(
            [(b - a) / 1000 for a, b in zip(one, twenty, strict=True)], abs=2e-4)
        assert figure["min"] <= figure["median"] <= figure["max"]
    target = results["targets"]["grants_20_minus_1_p50_ms"]
    assert target["reached"] == max(differences["container"]["median"],
                                    differences["blob"]["median"])
    assert target["met"] is (target["reached"] <= grants.TARGET_MS)
    assert figures["elapsed_seconds"] > 0


@pytest.mark.slow
def test_the_rotate_call_is_measured_per_key_type(results: dict[str, Any]) -> None:
    figures = results["rotate"]
    assert figures["counts"] == results["plan"]["rotate"]
    per_key_type = figures["counts"]["per_key_type"]
    assert set(figures["key_types"]) == set(rotate.KINDS) == {"rsa", "ecdsa", "ed25519"}
    for row in figures["key_types"].values():
        positive_load(row, STEP_KEYS, threads=1)
        assert row["requests"] == per_key_type
    # Shape of the caching, not a timing: each current certificate got a token first, so
    # its OCSP answer is cached and a rotation asks the responder about its successor only.
    assert figures["ocsp_requests"] == len(rotate.KINDS) * per_key_type
    assert figures["preparation_seconds"] >= 0 and figures["elapsed_seconds"] > 0


@pytest.mark.slow
def test_grants_and_rotate_alone(tmp_path: Path) -> None:
    document, stdout = run_bench(tmp_path / "grants.json", "--grants-only")
    assert "1 grant vs 20" in stdout and "POST /api/rotate" in stdout
    assert "interleaved rounds: median" not in stdout
    assert set(document) == {"smoke", "counts", "machine", "elapsed_seconds", "plan", "grants",
                             "rotate"}
    assert set(document["grants"]["p50_us"]) == GRANT_SECTIONS
    assert all(row["errors"] == 0 for row in document["rotate"]["key_types"].values())


def test_the_gc_monitor_counts_collections_and_their_time() -> None:
    monitor = rounds.GcMonitor()
    with monitor.installed():
        gc.collect()
        gc.collect(0)
    assert monitor.collections == 2 and monitor.ns > 0
    assert monitor not in gc.callbacks


def test_pinning_moves_every_thread_of_a_process_and_back() -> None:
    if rounds.pinning_unavailable():
        pytest.skip(str(rounds.pinning_unavailable()))
    everything = os.sched_getaffinity(0)
    one = {min(everything)}
    # A child with a second thread: both must be moved, as Azurite's threads are.
    child = subprocess.Popen([sys.executable, "-c",
                              "import threading, time; threading.Thread(target=time.sleep, "
                              "args=(30,), daemon=True).start(); time.sleep(30)"])
    try:
        threads: list[int] = []
        for _ in range(200):
            threads = [int(t) for t in os.listdir(f"/proc/{child.pid}/task")]
            if len(threads) >= 2:
                break
            time.sleep(0.01)
        assert len(threads) >= 2
        rounds.set_affinity([child.pid], one)
        assert all(os.sched_getaffinity(tid) == one for tid in threads)
        rounds.set_affinity([child.pid], everything)
        assert all(os.sched_getaffinity(tid) == everything for tid in threads)
    finally:
        child.kill()
        child.wait()
