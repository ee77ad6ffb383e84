"""Timing helpers: ``time.perf_counter_ns``, nearest-rank percentiles, serial and threaded loads.

Nothing here judges a figure: a load returns what it measured and how many calls
failed their correctness check, and the caller prints it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

Call = Callable[[], bool]  # one unit of work; False (or an exception) is an error


def percentile(sorted_ns: Sequence[int], p: float) -> int:
    """Nearest-rank percentile of an ascending, non-empty sequence."""
    rank = max(1, math.ceil(p / 100 * len(sorted_ns)))
    return sorted_ns[rank - 1]


@dataclass(frozen=True)
class Summary:
    """What one load measured: latency of each call, and the load's wall time."""

    count: int
    errors: int
    threads: int
    wall_ns: int
    p50_ns: int
    p95_ns: int
    p99_ns: int
    mean_ns: float
    max_ns: int
    first_error: str | None = None

    @classmethod
    def of(cls, latencies_ns: Sequence[int], *, errors: int, threads: int, wall_ns: int,
           first_error: str | None = None) -> Summary:
        ordered = sorted(latencies_ns)
        return cls(
            count=len(ordered), errors=errors, threads=threads, wall_ns=max(wall_ns, 1),
            p50_ns=percentile(ordered, 50), p95_ns=percentile(ordered, 95),
            p99_ns=percentile(ordered, 99), mean_ns=sum(ordered) / len(ordered),
            max_ns=ordered[-1], first_error=first_error,
        )

    @property
    def per_second(self) -> float:
        return self.count / (self.wall_ns / 1e9)

    def to_json(self) -> dict[str, float | int]:
        return {
            "requests": self.count,
            "threads": self.threads,
            "errors": self.errors,
            "seconds": round(self.wall_ns / 1e9, 6),
            "rps": round(self.per_second, 1),
            "p50_us": _us(self.p50_ns),
            "p95_us": _us(self.p95_ns),
            "p99_us": _us(self.p99_ns),
            "mean_us": _us(self.mean_ns),
            "max_us": _us(self.max_ns),
        }


def _us(ns: float) -> float:
    return round(ns / 1000, 1)


def _timed(call: Call) -> tuple[int, str | None]:
    """(latency, None) for a correct call; (latency, why) for an error."""
    start = time.perf_counter_ns()
    try:
        ok = call()
    except Exception as exc:  # counted and reported, never hidden
        return time.perf_counter_ns() - start, f"{type(exc).__name__}: {exc}"
    elapsed = time.perf_counter_ns() - start
    return elapsed, None if ok else "correctness check failed"


def run_serial(call: Call, count: int) -> Summary:
    """``count`` calls one after another."""
    latencies: list[int] = []
    errors: list[str] = []
    start = time.perf_counter_ns()
    for _ in range(count):
        elapsed, error = _timed(call)
        latencies.append(elapsed)
        if error is not None:
            errors.append(error)
    wall = time.perf_counter_ns() - start
    return Summary.of(latencies, errors=len(errors), threads=1, wall_ns=wall,
                      first_error=errors[0] if errors else None)


def run_threaded(call: Call, count: int, threads: int) -> Summary:
    """``count`` calls spread over ``threads`` workers; throughput is count / wall time."""
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bench") as pool:
        # Start every worker before the clock does, so thread creation is not measured.
        list(pool.map(lambda _: None, range(threads * 4)))
        start = time.perf_counter_ns()
        results = list(pool.map(lambda _: _timed(call), range(count)))
        wall = time.perf_counter_ns() - start
    errors = [error for _, error in results if error is not None]
    return Summary.of([elapsed for elapsed, _ in results], errors=len(errors), threads=threads,
                      wall_ns=wall, first_error=errors[0] if errors else None)


def repeat(work: Callable[[], object], count: int) -> Summary:
    """A micro-benchmark: ``work`` has no correctness check beyond not raising."""

    def call() -> bool:
        work()
        return True

    return run_serial(call, count)
