"""The warm token path, the floor and the audit insert, measured turn about in rounds within one run.

Why rounds: measured once each, a minute apart, ``warm ÷ (floor + insert)`` swung from
1.04 to 1.64 between three runs of one machine (issue 18). Here every round measures
all four sections (floor, insert, warm, warm without the audit write) turn about in
short slices (the order mirrored slice by slice), so a burst of other work, or drift,
lands in each section alike; each round's ratios are computed from that round's own
sections, and the figures reported are the median over rounds with its spread (min-max).
Rounds alternate between the machine as it is (``free``) and every thread of this
process and of Azurite pinned to CPU 0 (``pinned``, ``sched_setaffinity``: what
``taskset -c 0`` does), so both come from the same minutes.

What made single runs swing, and the controls that take it out (``Controls``):

- **the audit table grows**: Azurite finds a duplicate by scanning the partition, and
  its heap (and V8's collections) grow with every row; a round writes to an audit table
  of its own, dropped afterwards;
- **garbage collection**: a full collection of the bench process's heap (every module
  imported, the earlier loads' garbage) lands in whichever section it happens to fall;
  each section starts from ``gc.collect(); gc.freeze()`` so the long-lived heap is never
  traversed again, and the time spent in collections while timed is reported;
- **a cold Azurite**: V8 compiles Azurite's insert path as it goes, so its first few
  thousand inserts cost it more CPU than later ones; the rounds start after
  ``Counts.azurite_warmup`` untimed inserts into a table that is then dropped;
- **cold connections and caches**: each section runs untimed calls first;
- **other work on the machine**: sections measured one after the other for a second each
  meet different bursts; slices of a few milliseconds share them.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from azure.data.tables import TableServiceClient

from bench.measure import percentile
from bench.scenarios import TokenCall, floor_work, install, without_audit
from bench.services import CONTAINER, Services
from certsas.audit import AuditRecord, TableAuditSink
from certsas.broker import TokenBroker
from certsas.clientcert import PresentedCertificate
from certsas.clock import system_clock
from certsas.config import Settings
from certsas.runtime import build_broker, get_broker
from certsas.storage import StorageClients

SECTIONS = ("floor", "insert", "warm", "warm_without_audit_write")
RATIOS = ("warm_over_floor_plus_insert", "cpu_per_token_over_floor",
          "warm_over_floor_without_audit_write")


@dataclasses.dataclass(frozen=True)
class Controls:
    fresh_table: bool  # each round writes to an audit table of its own
    gc_frozen: bool  # gc.collect(); gc.freeze() before each timed round
    warm_up: bool  # Counts.warmup untimed calls of each section, Azurite warmed first
    interleaved: bool  # sections run in Counts.slices slices, turn about, within a round

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


CONTROLLED = Controls(fresh_table=True, gc_frozen=True, warm_up=True, interleaved=True)
# The protocol before issue 18: one audit table for the whole run, collections wherever
# they fall, a section starts cold. Kept to show the difference (--uncontrolled).
UNCONTROLLED = Controls(fresh_table=False, gc_frozen=False, warm_up=False, interleaved=False)


@dataclasses.dataclass(frozen=True)
class Counts:
    rounds: int = 7  # per mode
    floor: int = 1000
    insert: int = 400
    warm: int = 800
    warm_without_audit_write: int = 800
    warmup: int = 50  # per section, when Controls.warm_up
    slices: int = 40  # per round, when Controls.interleaved
    azurite_warmup: int = 3000  # inserts before the first round, when Controls.warm_up


@dataclasses.dataclass(frozen=True)
class Section:
    p50_us: float
    cpu_us: float  # process CPU per call, every thread of this process
    gc_collections: int  # while timed
    gc_ms: float

    def to_json(self) -> dict[str, float]:
        return dataclasses.asdict(self)


# --- CPU affinity ---------------------------------------------------------------------


def pinning_unavailable() -> str | None:
    """Why the pinned rounds cannot run here, or None."""
    if not hasattr(os, "sched_setaffinity"):
        return "sched_setaffinity (taskset) is not available on this platform"
    if len(os.sched_getaffinity(0)) < 2:
        return "this process may use one CPU only: every round is already pinned"
    return None


def set_affinity(pids: Sequence[int], cpus: set[int]) -> None:
    """Every thread of each process in ``pids`` onto ``cpus`` (``taskset -a -p``); threads
    started later inherit it from the thread that starts them."""
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                os.sched_setaffinity(int(tid), cpus)
            except (ProcessLookupError, FileNotFoundError):
                continue  # a thread that ended meanwhile


# --- garbage collection ---------------------------------------------------------------


class GcMonitor:
    """Collections, and the time spent in them, from ``gc.callbacks``."""

    def __init__(self) -> None:
        self.collections = 0
        self.ns = 0
        self._started = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter_ns()
        else:
            self.collections += 1
            self.ns += time.perf_counter_ns() - self._started

    @contextmanager
    def installed(self) -> Iterator[GcMonitor]:
        gc.callbacks.append(self)
        try:
            yield self
        finally:
            gc.callbacks.remove(self)


class Timings:
    """Wall and CPU time of every call of one section, gathered slice by slice."""

    def __init__(self) -> None:
        self.wall_ns: list[int] = []
        self.cpu_ns = 0
        self.gc_collections = 0
        self.gc_ns = 0

    def run(self, work: Callable[[], bool], count: int, monitor: GcMonitor) -> None:
        collections, gc_ns = monitor.collections, monitor.ns
        cpu = time.process_time_ns()
        for _ in range(count):
            started = time.perf_counter_ns()
            if not work():
                raise RuntimeError("a timed call failed its check")
            self.wall_ns.append(time.perf_counter_ns() - started)
        self.cpu_ns += time.process_time_ns() - cpu
        self.gc_collections += monitor.collections - collections
        self.gc_ns += monitor.ns - gc_ns

    def section(self) -> Section:
        calls = len(self.wall_ns)
        return Section(p50_us=percentile(sorted(self.wall_ns), 50) / 1000,
                       cpu_us=self.cpu_ns / calls / 1000, gc_collections=self.gc_collections,
                       gc_ms=self.gc_ns / 1e6)


def timed_round(work: dict[str, tuple[Callable[[], bool], int]], controls: Controls,
                monitor: GcMonitor, *, slices: int, warmup: int, mirrored: bool
                ) -> dict[str, Section]:
    """Every section of one round (``work``'s, in its order). Interleaved: ``slices``
    slices, each running a ``1/slices`` share of every section in turn (mirrored order
    slice by slice), so a burst of other work on the machine lands in all sections alike
    rather than in one. ``warmup`` untimed calls of each section first."""
    slices = slices if controls.interleaved else 1
    order = list(reversed(work)) if mirrored else list(work)
    if controls.warm_up:
        for name in order:
            for _ in range(warmup):
                work[name][0]()
    if controls.gc_frozen:
        gc.collect()
        gc.freeze()
    timings = {name: Timings() for name in work}
    try:
        for index in range(slices):
            for name in order if index % 2 == 0 else order[::-1]:
                call, count = work[name]
                share = count // slices + (1 if index < count % slices else 0)
                timings[name].run(call, share, monitor)
    finally:
        if controls.gc_frozen:
            gc.unfreeze()
    return {name: timings[name].section() for name in work}


# --- one round ------------------------------------------------------------------------


def _record(presented: PresentedCertificate) -> AuditRecord:
    now = system_clock()
    return AuditRecord(time=now, request_id="bench-round", thumbprint=presented.thumbprint,
                       subject=presented.subject, container=CONTAINER, blob=None,
                       permissions="rl", expires_on=now, client_address=None,
                       signature_sha256="00" * 32)


def warm_azurite(services: Services, settings: Settings, count: int) -> None:
    """``count`` untimed inserts into a table of their own, dropped afterwards."""
    tables = TableServiceClient.from_connection_string(services.azurite.connection_string)
    table = f"BenchWarmup{os.urandom(4).hex()}"
    tables.create_table(table)
    sink = TableAuditSink(StorageClients(settings.storage).hot_table(table),
                          settings.audit_partitions)
    record = _record(PresentedCertificate.from_der(services.client.der))
    for _ in range(count):
        sink.record(record)
    tables.delete_table(table)


def round_broker(settings: Settings, audit_table: str) -> TokenBroker:
    """A broker as the app builds it, writing its audit records to ``audit_table``."""
    return build_broker(dataclasses.replace(
        settings, storage=dataclasses.replace(settings.storage, audit_table=audit_table)))


def one_round(services: Services, settings: Settings, call: TokenCall, audit_table: str,
              counts: Counts, controls: Controls, monitor: GcMonitor, *, mirrored: bool
              ) -> dict[str, Section]:
    broker = round_broker(settings, audit_table)
    sink = TableAuditSink(StorageClients(settings.storage).hot_table(audit_table),
                          settings.audit_partitions)
    record = _record(PresentedCertificate.from_der(services.client.der))
    floor = floor_work(services, settings)

    def floor_call() -> bool:
        floor()
        return True

    def insert_call() -> bool:
        sink.record(record)
        return True

    def warm() -> bool:
        install(broker)
        return call()

    bare = without_audit(broker)

    def warm_without_audit_write() -> bool:
        install(bare)
        return call()

    install(broker)
    call.check_once()  # fills this broker's caches and opens its connections
    sink.record(record)
    work = {"floor": (floor_call, counts.floor), "insert": (insert_call, counts.insert),
            "warm": (warm, counts.warm),
            "warm_without_audit_write": (warm_without_audit_write,
                                         counts.warm_without_audit_write)}
    return timed_round(work, controls, monitor, slices=counts.slices, warmup=counts.warmup,
                       mirrored=mirrored)


def round_ratios(sections: dict[str, Section]) -> dict[str, float]:
    floor, insert, warm = sections["floor"], sections["insert"], sections["warm"]
    return {
        "warm_over_floor_plus_insert": warm.p50_us / (floor.p50_us + insert.p50_us),
        "cpu_per_token_over_floor": warm.cpu_us / floor.cpu_us,
        "warm_over_floor_without_audit_write":
            sections["warm_without_audit_write"].p50_us / floor.p50_us,
    }


def spread(values: Sequence[float], digits: int = 2) -> dict[str, Any]:
    """Median and min-max over rounds, and every round's value in order."""
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits), "rounds": [round(v, digits) for v in values]}


def summarise(rounds: list[dict[str, Section]]) -> dict[str, Any]:
    per_round = [round_ratios(sections) for sections in rounds]
    return {
        "ratios": {key: spread([r[key] for r in per_round]) for key in RATIOS},
        "p50_us": {name: spread([r[name].p50_us for r in rounds], 1) for name in SECTIONS},
        "cpu_us_per_call": {name: spread([r[name].cpu_us for r in rounds], 1)
                            for name in SECTIONS},
        "gc_ms_while_timed": {name: spread([r[name].gc_ms for r in rounds], 2)
                              for name in SECTIONS},
        "gc_collections_while_timed": {name: sum(r[name].gc_collections for r in rounds)
                                       for name in SECTIONS},
    }


# --- the whole measurement ------------------------------------------------------------


def measure(services: Services, settings: Settings, call: TokenCall, counts: Counts,
            controls: Controls = CONTROLLED) -> dict[str, Any]:
    """``counts.rounds`` rounds free and as many pinned, interleaved; the broker that was
    installed is installed again afterwards."""
    previous = get_broker()
    tables = TableServiceClient.from_connection_string(services.azurite.connection_string)
    shared = f"BenchRounds{os.urandom(4).hex()}"
    if not controls.fresh_table:
        tables.create_table(shared)
    why_not_pinned = pinning_unavailable()
    modes = ("free",) if why_not_pinned else ("free", "pinned")
    everything = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    azurite = services.azurite.process
    pids = [os.getpid()] + ([azurite.pid] if azurite is not None else [])
    results: dict[str, list[dict[str, Section]]] = {mode: [] for mode in modes}
    monitor = GcMonitor()
    if controls.warm_up:
        warm_azurite(services, settings, counts.azurite_warmup)
    try:
        with monitor.installed():
            for turn in range(counts.rounds):
                for mode in modes if turn % 2 == 0 else tuple(reversed(modes)):
                    if why_not_pinned is None:
                        set_affinity(pids, {min(everything)} if mode == "pinned" else everything)
                    table = shared
                    if controls.fresh_table:
                        table = f"BenchRound{os.urandom(4).hex()}"
                        tables.create_table(table)
                    results[mode].append(one_round(services, settings, call, table, counts,
                                                   controls, monitor, mirrored=turn % 2 == 1))
                    if controls.fresh_table:
                        tables.delete_table(table)
    finally:
        if why_not_pinned is None:
            set_affinity(pids, everything)
        install(previous)
    figures: dict[str, Any] = {
        "controls": controls.to_json(),
        "counts": dataclasses.asdict(counts),
        "free": summarise(results["free"]),
    }
    if why_not_pinned is None:
        figures["pinned"] = {"cpu": min(everything), **summarise(results["pinned"])}
    else:
        figures["pinned"] = {"skipped": why_not_pinned}
    return figures


# --- output ---------------------------------------------------------------------------


def _row(label: str, figure: dict[str, Any], unit: str = "") -> str:
    return (f"  {label:<42}{figure['median']:>9}{unit}  ({figure['min']}-{figure['max']}; "
            f"{len(figure['rounds'])} rounds)")


def table(figures: dict[str, Any]) -> str:
    controls = figures["controls"]
    lines = ["", f"interleaved rounds: median (min-max over rounds); controls {controls}"]
    for mode in ("free", "pinned"):
        part = figures[mode]
        if "skipped" in part:
            lines.append(f"  {mode}: skipped ({part['skipped']})")
            continue
        title = "free (the machine as it is)" if mode == "free" else f"pinned to CPU {part['cpu']}"
        lines.append(f" {title}")
        for key in RATIOS:
            lines.append(_row(key, part["ratios"][key]))
        for name in SECTIONS:
            lines.append(_row(f"p50 us, {name}", part["p50_us"][name]))
        for name in SECTIONS:
            lines.append(_row(f"CPU us per call, {name}", part["cpu_us_per_call"][name]))
        lines.append(_row("GC ms while timed, warm", part["gc_ms_while_timed"]["warm"]))
    return "\n".join(lines)
