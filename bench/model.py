"""The scale model of docs/scale.md, computed from a bench run: ``python -m bench.model [results.json]``.

Measured inputs come from ``bench/results.json``: CPU per token in the app process, the
Table insert latency on Azurite, the multi-process throughput and its group-commit
batch sizes. Published inputs are Microsoft's (cited in docs/scale.md). Everything
else is a parameter with the app's default. Nothing here is a measurement: it is
arithmetic on measurements, printed so that a reviewer can redo it.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Published (docs/scale.md cites each).
PARTITION_ENTITIES_PER_SECOND = 2_000  # one table partition, 1 KiB entities
ACCOUNT_REQUESTS_PER_SECOND = 20_000  # one standard storage account
PLANNING_WRITE_MS = 15.0  # Cosmos DB for Table's p99 write bound; Table storage publishes none
MAX_INSTANCES = {"Premium v3 (Dedicated)": 30, "Elastic Premium, Linux": 20}
MAX_WORKER_PROCESSES = 10  # FUNCTIONS_WORKER_PROCESS_COUNT


@dataclass(frozen=True)
class Deployment:
    """One instance's shape and the app settings that decide storage and responder load."""

    vcpus: int = 2
    processes: int = 4  # FUNCTIONS_WORKER_PROCESS_COUNT
    threads: int = 16  # PYTHON_THREADPOOL_THREAD_COUNT
    audit_partitions: int = 16  # AUDIT_PARTITIONS
    registry_cache_seconds: int = 30  # REGISTRY_CACHE_SECONDS
    active_certificates: int = 1_000
    ocsp_window_seconds: int = 3_600  # nextUpdate, capped by OCSP_CACHE_MAX_SECONDS
    crl_window_seconds: int = 86_400  # a CRL's nextUpdate
    crl_megabytes: float = 1.0


MAX_BATCH = 100  # an entity-group transaction's limit


def mean_batch(threads: int) -> float:
    """Records per audit write when every one of ``threads`` waits on the writer.

    GroupCommitAuditSink has one writer per process; the shard is picked per write, not
    per record, so every record queued while a write is under way goes in the next one
    (one day, at most MAX_BATCH), whatever AUDIT_PARTITIONS is. When the write dominates
    a token's time all threads are waiting, so this is the batch's upper bound; the
    bench measures the real one.
    """
    return float(min(threads, MAX_BATCH))


def per_instance(cpu_us: float, write_ms: float, d: Deployment) -> dict[str, float]:
    """Tokens/s one instance serves: the least of its CPU, its threads and its audit writer."""
    seconds = write_ms / 1000
    batch = mean_batch(d.threads)
    cpu = min(d.vcpus, d.processes) * 1e6 / cpu_us  # one process uses at most one core (GIL)
    threads = d.processes * d.threads / (cpu_us / 1e6 + seconds)
    writer = d.processes * batch / seconds
    return {"cpu_bound": cpu, "thread_bound": threads, "audit_writer_bound": writer,
            "tokens_per_second": min(cpu, threads, writer), "mean_batch": batch}


def limits(tokens_per_second: float, instances: int, d: Deployment, batch: float
           ) -> dict[str, float]:
    """Load on storage and on the revocation responders at ``tokens_per_second``."""
    processes = instances * d.processes
    audit_requests = tokens_per_second / batch
    registry_reads = min(tokens_per_second,
                         d.active_certificates * processes / max(d.registry_cache_seconds, 1))
    return {
        "audit_entities_per_partition": tokens_per_second / d.audit_partitions,
        "audit_requests": audit_requests,
        "registry_reads": registry_reads,
        "account_requests": audit_requests + registry_reads,
        "ocsp_requests_per_window": d.active_certificates * processes,
        "ocsp_requests_per_second": d.active_certificates * processes / d.ocsp_window_seconds,
        "crl_downloads_per_window": processes,
        "crl_megabytes_per_window": processes * d.crl_megabytes,
    }


def first_limits(cpu_us: float, write_ms: float, d: Deployment) -> list[tuple[str, float]]:
    """Token rates at which each limit is reached, lowest first: what breaks first."""
    instance = per_instance(cpu_us, write_ms, d)
    rate, batch = instance["tokens_per_second"], instance["mean_batch"]
    candidates = {f"{plan}: {count} instances" : count * rate for plan, count in MAX_INSTANCES.items()}
    candidates["one audit partition (2,000 entities/s) x AUDIT_PARTITIONS"] = (
        PARTITION_ENTITIES_PER_SECOND * d.audit_partitions)
    # Account requests grow with tokens (audit) and with processes (registry misses).
    per_token = 1 / batch
    registry_per_instance = d.active_certificates * d.processes / max(d.registry_cache_seconds, 1)
    # rate r needs r / rate instances; requests = r * per_token + min(r, misses(r)).
    misses_per_token = registry_per_instance / rate
    candidates["storage account (20,000 requests/s)"] = (
        ACCOUNT_REQUESTS_PER_SECOND / (per_token + min(1.0, misses_per_token)))
    return sorted(candidates.items(), key=lambda item: item[1])


def model(results: dict[str, Any], d: Deployment) -> dict[str, Any]:
    cpu_us = float(results["cpu"]["warm_us_per_token"])
    azurite_ms = float(results["components"]["audit_insert"]["p50_us"]) / 1000
    scale = results["scale"]
    scenarios = {}
    for name, write_ms in (("azurite_insert", azurite_ms), ("planning_write", PLANNING_WRITE_MS)):
        instance = per_instance(cpu_us, write_ms, d)
        rate = instance["tokens_per_second"]
        need = {str(target): math.ceil(target / rate) for target in (1_000, 10_000)}
        scenarios[name] = {
            "write_ms": round(write_ms, 2),
            "per_instance": {k: round(v, 1) for k, v in instance.items()},
            "instances_needed": need,
            "at_10000_tokens_per_second": {
                k: round(v, 1) for k, v in
                limits(10_000, need["10000"], d, instance["mean_batch"]).items()},
            "what_breaks_first": [(name, round(rate)) for name, rate in
                                  first_limits(cpu_us, write_ms, d)],
        }
    return {
        "deployment": asdict(d),
        "measured": {"cpu_us_per_token": cpu_us, "azurite_insert_ms": round(azurite_ms, 2),
                     "bench_tokens_per_second": scale["tokens_per_second"],
                     "bench_processes": scale["processes"], "bench_mean_batch": scale["mean_batch"]},
        "scenarios": scenarios,
    }


def render(figures: dict[str, Any]) -> str:
    measured, d = figures["measured"], figures["deployment"]
    lines = [
        f"measured: {measured['cpu_us_per_token']:.0f} us CPU per token, Azurite insert "
        f"{measured['azurite_insert_ms']} ms, {measured['bench_tokens_per_second']:.0f} tokens/s "
        f"from {measured['bench_processes']} processes on the bench (mean batch "
        f"{measured['bench_mean_batch']})",
        f"deployment: {d['vcpus']} vCPU, {d['processes']} processes x {d['threads']} threads, "
        f"AUDIT_PARTITIONS={d['audit_partitions']}, {d['active_certificates']} active certificates",
    ]
    for name, s in figures["scenarios"].items():
        p = s["per_instance"]
        at = s["at_10000_tokens_per_second"]
        lines += [
            "",
            f"{name} (Table write {s['write_ms']} ms):",
            f"  per instance {p['tokens_per_second']:.0f} tokens/s (CPU {p['cpu_bound']:.0f}, "
            f"threads {p['thread_bound']:.0f}, audit writer {p['audit_writer_bound']:.0f}; "
            f"mean batch {p['mean_batch']})",
            f"  instances for 1,000 tokens/s: {s['instances_needed']['1000']}; "
            f"for 10,000: {s['instances_needed']['10000']}",
            f"  at 10,000 tokens/s: {at['audit_entities_per_partition']:.0f} entities/s per audit "
            f"partition, {at['account_requests']:.0f} account requests/s "
            f"({at['audit_requests']:.0f} audit, {at['registry_reads']:.0f} registry), "
            f"OCSP {at['ocsp_requests_per_window']:.0f} per window "
            f"({at['ocsp_requests_per_second']:.1f}/s), CRL {at['crl_downloads_per_window']:.0f} "
            "downloads per window",
            "  what breaks first (tokens/s): " + "; ".join(
                f"{limit} at {rate:,}" for limit, rate in s["what_breaks_first"]),
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.model", description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="?", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--vcpus", type=int, default=Deployment.vcpus)
    parser.add_argument("--processes", type=int, default=Deployment.processes)
    parser.add_argument("--threads", type=int, default=Deployment.threads)
    parser.add_argument("--audit-partitions", type=int, default=Deployment.audit_partitions)
    parser.add_argument("--certificates", type=int, default=Deployment.active_certificates)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.processes <= MAX_WORKER_PROCESSES:
        parser.error(f"--processes must be 1 to {MAX_WORKER_PROCESSES} (the host's maximum)")
    deployment = replace(Deployment(), vcpus=args.vcpus, processes=args.processes,
                         threads=args.threads,
                         audit_partitions=args.audit_partitions,
                         active_certificates=args.certificates)
    figures = model(json.loads(args.results.read_text(encoding="utf-8")), deployment)
    print(json.dumps(figures, indent=2) if args.json else render(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
