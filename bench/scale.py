"""Many worker processes against one storage account, as the Functions host runs them.

The host starts ``FUNCTIONS_WORKER_PROCESS_COUNT`` Python workers per instance, each
with its own thread pool; so here ``processes`` fresh interpreters (``spawn``), each
building its own broker with :func:`certsas.runtime.build_broker` from the same
settings, each calling the ``token`` user function from ``threads`` threads. All start
together (a barrier), each stops after ``per_process`` tokens or ``seconds``, whichever
comes first. Every answer must be a 200; every 200 carries a request ID no other call
used, so the audit table can be checked afterwards: one record per token, no more.

The group-commit batch sizes are counted from the outside: the bench wraps the inner
sink's ``write`` (one call per Table request) in each process.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bench.measure import percentile
from bench.services import Services

ENDPOINT = "http://localhost:7071/api/token"
START_TIMEOUT_SECONDS = 120.0  # imports and broker build of every child, on a busy machine


@dataclass(frozen=True)
class Shape:
    processes: int
    threads: int
    per_process: int
    seconds: float
    warmup: int = 2  # per thread, before the barrier (connections open, caches filled)


@dataclass
class WorkerResult:
    """What one process measured; plain data, so it crosses the process boundary."""

    index: int
    latencies_ns: list[int] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)  # every 200, warm-up included
    errors: int = 0
    first_error: str | None = None
    started_ns: int = 0
    finished_ns: int = 0
    cpu_seconds: float = 0.0  # process CPU of the timed part, all threads
    batch_sizes: dict[int, int] = field(default_factory=dict)


class _Context:
    def __init__(self, invocation_id: str) -> None:
        self.invocation_id = invocation_id


def count_batches(broker: Any) -> Counter[int]:
    """Wrap the group-commit sink's inner ``write``: one count per Table request, by size."""
    sink = broker.audit
    inner = getattr(sink, "_inner", None)
    if inner is None or not callable(getattr(inner, "write", None)):
        raise RuntimeError(f"{type(sink).__name__} has no inner sink to count batches on")
    sizes: Counter[int] = Counter()
    lock = threading.Lock()
    write = inner.write

    def counted(entities: Any) -> None:
        with lock:
            sizes[len(entities)] += 1
        write(entities)

    inner.write = counted
    return sizes


def _worker(index: int, env: Mapping[str, str], headers: Mapping[str, str], shape: Shape,
            barrier: Any, queue: Any) -> None:
    """One worker process: its own broker, ``shape.threads`` threads, results on ``queue``."""
    result = WorkerResult(index)
    try:
        _run(index, env, headers, shape, barrier, result)
    except Exception as exc:  # reported to the parent, never lost
        result.errors += 1
        result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"
        barrier.abort()
    queue.put(result)


def _run(index: int, env: Mapping[str, str], headers: Mapping[str, str], shape: Shape,
         barrier: Any, result: WorkerResult) -> None:
    os.environ.update(env)
    import azure.functions as func

    import function_app
    from certsas import runtime
    from certsas.config import Settings
    from certsas.devtools.routes import find_route

    handler = find_route(function_app.app, "token").handler
    broker = runtime.build_broker(Settings.from_env(os.environ))
    runtime._broker = broker  # what get_broker() returns in this process
    sizes = count_batches(broker)
    sequence = itertools.count()
    lock = threading.Lock()

    def call() -> None:
        request_id = f"scale-p{index}-{next(sequence)}"
        request = func.HttpRequest(method="POST", url=ENDPOINT, headers=dict(headers),
                                   params={}, body=b"")
        start = time.perf_counter_ns()
        try:
            status, error = handler(request, _Context(request_id)).status_code, None
        except Exception as exc:
            status, error = 0, f"{type(exc).__name__}: {exc}"
        elapsed = time.perf_counter_ns() - start
        with lock:
            if status == 200:
                result.request_ids.append(request_id)
                result.latencies_ns.append(elapsed)
            else:
                result.errors += 1
                result.first_error = result.first_error or error or f"status {status}"

    with ThreadPoolExecutor(shape.threads, thread_name_prefix=f"scale-{index}") as pool:
        list(pool.map(lambda _: call(), range(shape.threads * shape.warmup)))
        result.latencies_ns.clear()
        sizes.clear()
        barrier.wait(timeout=START_TIMEOUT_SECONDS)
        deadline = time.monotonic() + shape.seconds
        remaining = itertools.count(shape.per_process, -1)

        def loop() -> None:
            while time.monotonic() < deadline and next(remaining) > 0:
                call()

        cpu = time.process_time()
        result.started_ns = time.perf_counter_ns()
        for future in [pool.submit(loop) for _ in range(shape.threads)]:
            future.result()
        result.finished_ns = time.perf_counter_ns()
        result.cpu_seconds = time.process_time() - cpu
    result.batch_sizes = dict(sizes)


def run_processes(env: Mapping[str, str], headers: Mapping[str, str], shape: Shape
                  ) -> list[WorkerResult]:
    """Start ``shape.processes`` workers together; their results, by index.

    ``perf_counter_ns`` is the system-wide monotonic clock on Linux, so the children's
    start and end stamps are comparable.
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(shape.processes)
    queue = context.Queue()
    workers = [context.Process(target=_worker, name=f"certsas-scale-{i}",
                               args=(i, dict(env), dict(headers), shape, barrier, queue))
               for i in range(shape.processes)]
    for worker in workers:
        worker.start()
    results: list[WorkerResult] = []
    try:
        limit = time.monotonic() + START_TIMEOUT_SECONDS + shape.seconds + 60
        while len(results) < len(workers):
            results.append(queue.get(timeout=max(1.0, limit - time.monotonic())))
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.terminate()
                worker.join(timeout=5)
    return sorted(results, key=lambda r: r.index)


def summary(results: list[WorkerResult], shape: Shape) -> dict[str, Any]:
    """Tokens/s over the span from the first start to the last finish, and latency."""
    latencies = sorted(ns for r in results for ns in r.latencies_ns)
    tokens = len(latencies)
    span_ns = max(r.finished_ns for r in results) - min(r.started_ns for r in results)
    sizes: Counter[int] = Counter()
    for r in results:
        sizes.update(r.batch_sizes)
    writes = sum(sizes.values())
    cpu = sum(r.cpu_seconds for r in results)
    return {
        "processes": shape.processes,
        "threads_per_process": shape.threads,
        "tokens": tokens,
        "errors": sum(r.errors for r in results),
        **({"first_error": next(r.first_error for r in results if r.first_error)}
           if any(r.first_error for r in results) else {}),
        "seconds": round(span_ns / 1e9, 3),
        "tokens_per_second": round(tokens / (span_ns / 1e9), 1) if tokens else 0.0,
        "p50_us": round(percentile(latencies, 50) / 1000, 1) if tokens else 0.0,
        "p99_us": round(percentile(latencies, 99) / 1000, 1) if tokens else 0.0,
        "cpu_us_per_token": round(cpu / tokens * 1e6, 1) if tokens else 0.0,
        "audit_writes": writes,
        "mean_batch": round(sum(k * v for k, v in sizes.items()) / writes, 2) if writes else 0.0,
        "batch_sizes": {str(size): count for size, count in sorted(sizes.items())},
    }


def audit_check(results: list[WorkerResult], list_request_ids: Callable[[], list[str]]
                ) -> dict[str, int]:
    """Tokens answered 200 (warm-up included) against the audit table's records."""
    issued = [rid for r in results for rid in r.request_ids]
    stored = list_request_ids()
    return {"issued": len(issued), "distinct_issued": len(set(issued)),
            "records": len(stored), "distinct_records": len(set(stored)),
            "records_matching_issued": len(set(stored) & set(issued))}


def measure(env: Mapping[str, str], headers: Mapping[str, str], shape: Shape,
            list_request_ids: Callable[[], list[str]]) -> dict[str, Any]:
    results = run_processes(env, headers, shape)
    return {**summary(results, shape), "audit": audit_check(results, list_request_ids)}


# --- the bench's side: figures, ratios, targets, printed rows ---------------------------

TARGETS = {"warm_over_floor_plus_insert": 1.2, "cpu_per_token_over_floor": 3.0}


def measure_services(services: Services, plan: Any) -> dict[str, Any]:
    """The multi-process load against the bench's Azurite, into an audit table of its own."""
    from azure.data.tables import TableServiceClient

    audit_table = f"ScaleAudit{os.urandom(4).hex()}"
    tables = TableServiceClient.from_connection_string(services.azurite.connection_string)
    tables.create_table(audit_table)
    table = tables.get_table_client(audit_table)
    shape = Shape(processes=plan.scale_processes, threads=plan.scale_threads,
                  per_process=plan.scale_tokens_per_process, seconds=plan.scale_seconds)

    def request_ids() -> list[str]:
        return [str(entity["RequestId"]) for entity in table.list_entities(select=["RequestId"])]

    return measure({**services.env, "AUDIT_TABLE_NAME": audit_table}, services.headers, shape,
                   request_ids)


def cpu_per_token(warm_cpu: float, warm_count: int, floor_cpu: float, floor_count: int
                  ) -> dict[str, float]:
    """Process CPU (every thread of this process; Azurite is another process) per token."""
    return {"warm_us_per_token": round(warm_cpu / warm_count * 1e6, 1),
            "floor_us_per_token": round(floor_cpu / floor_count * 1e6, 1)}


def ratios(results: dict[str, Any]) -> dict[str, float]:
    """The median over the interleaved rounds, free (bench/rounds.py; spread beside it)."""
    free = results["rounds"]["free"]["ratios"]
    return {key: free[key]["median"] for key in TARGETS}


def single_shot(results: dict[str, Any]) -> dict[str, float]:
    """The same ratios as computed before issue 18, from loads measured once each, minutes
    apart (warm 1-thread load, the floor, the component insert): kept to compare with."""
    warm = results["warm"]["single"]["p50_us"]
    floor, insert = results["floor"]["p50_us"], results["components"]["audit_insert"]["p50_us"]
    cpu = results["cpu"]
    return {
        "warm_over_floor_plus_insert": round(warm / (floor + insert), 2),
        "cpu_per_token_over_floor": round(cpu["warm_us_per_token"] / cpu["floor_us_per_token"], 2),
    }


def targets(results: dict[str, Any]) -> dict[str, Any]:
    audit = results["scale"]["audit"]
    audit_exact = (results["scale"]["errors"] == 0 and audit["records"] == audit["issued"]
                   == audit["distinct_records"] == audit["distinct_issued"]
                   == audit["records_matching_issued"])
    return {
        **{key: {"target": f"<= {limit}", "reached": results[key], "met": results[key] <= limit,
                 "spread": _spread(results, key)}
           for key, limit in TARGETS.items()},
        "scale_audit_one_record_per_token": {"target": "exact", "reached": audit["records"],
                                             "met": audit_exact},
    }


def _spread(results: dict[str, Any], key: str) -> list[float]:
    """Min and max over the interleaved rounds of the ratio whose median is reached."""
    figure = results["rounds"]["free"]["ratios"][key]
    return [figure["min"], figure["max"]]


def error_count(results: dict[str, Any]) -> int:
    scale = results["scale"]
    audit = scale["audit"]
    mismatch = 0 if audit["records"] == audit["issued"] == audit["distinct_records"] else 1
    return int(scale["errors"]) + mismatch


def table(results: dict[str, Any]) -> str:
    scale, cpu = results["scale"], results["cpu"]
    audit = scale["audit"]
    sizes = ", ".join(f"{size}:{count}" for size, count in scale["batch_sizes"].items())
    return "\n".join([
        "",
        f"{'CPU per token, this process':<44}{'us':>9}",
        f"  {'warm, 1 thread (function, SDKs, HTTP)':<42}{cpu['warm_us_per_token']:>9.0f}",
        f"  {'floor (parse+verify+sign, no I/O)':<42}{cpu['floor_us_per_token']:>9.0f}",
        "",
        f"{scale['processes']} processes x {scale['threads_per_process']} threads, one Azurite"
        f"{'':<8}{'tok/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'CPU us/tok':>12}",
        f"  {'tokens ' + str(scale['tokens']) + ' in ' + str(scale['seconds']) + ' s':<42}"
        f"{scale['tokens_per_second']:>9.0f}{scale['p50_us'] / 1000:>9.2f}"
        f"{scale['p99_us'] / 1000:>9.2f}{scale['errors']:>8}{scale['cpu_us_per_token']:>12.0f}",
        f"  audit: {audit['records']} records, {audit['distinct_records']} distinct request IDs, "
        f"{audit['issued']} tokens answered 200 (warm-up included)",
        f"  group commit: {scale['audit_writes']} Table writes, mean batch {scale['mean_batch']}; "
        f"size:count {sizes}",
    ])
