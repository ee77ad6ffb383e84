"""Several grants per registration (issue 20): the warm token with 1 grant and with 20, side by side.

Two certificates from the bench's CA, alike but for their registrations: one holds the
container alone; the other 19 prefixes in it (``p00/`` ... ``p18/``) and then the whole
container, last, so that choosing the grant for a container token passes over all 20.
Each is asked for a container token and for a blob under the last prefix (covered by two
of the 20 grants: the longest prefix serves it). The four sections (two registrations,
two requests) run turn about in slices, as in bench/rounds.py, through the function with
a broker as the app builds it, each round writing to an audit table of its own; and so
again without the audit write, where a difference of a few microseconds is not lost in
the insert's spread. A round's difference is the 20-grant p50 minus the 1-grant p50 of
that round (the same slices); the figures are the median over rounds and its range.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from typing import Any

from azure.data.tables import TableServiceClient

from bench import rounds
from bench.scenarios import TokenCall, install, without_audit
from bench.services import CONTAINER, Services, headers_of
from certsas.config import Settings
from certsas.grants import AccessGrant
from certsas.registration import Registration
from certsas.registry import TableRegistry
from certsas.runtime import get_broker

GRANTS = (1, 20)
LAST_PREFIX = "p18/"
REQUESTS = {"container": {"container": CONTAINER},
            "blob": {"container": CONTAINER, "blob": f"{LAST_PREFIX}data.csv"}}
AUDIT = ("warm", "warm_without_audit_write")
TARGET_MS = 0.02


@dataclasses.dataclass(frozen=True)
class Counts:
    rounds: int = 7
    calls: int = 400  # per section and round
    warmup: int = 30  # per section and round
    slices: int = 20  # per round


def grants_of(count: int) -> tuple[AccessGrant, ...]:
    """1: the container; 20: 19 prefixes in it, then the whole container."""
    prefixed = tuple(AccessGrant.of(CONTAINER, prefix=f"p{index:02d}/", permissions="rl")
                     for index in range(count - 1))
    return (*prefixed, AccessGrant.of(CONTAINER, permissions="rl"))


def section(grants: int, request: str, audit: str) -> str:
    return f"{audit}/grants_{grants}/{request}"


def register(services: Services) -> dict[int, dict[str, str]]:
    """The two registrations; each one's forwarded-certificate header."""
    tables = TableServiceClient.from_connection_string(services.azurite.connection_string)
    registry = TableRegistry(tables.get_table_client(services.cert_table))
    headers: dict[int, dict[str, str]] = {}
    for count in GRANTS:
        # The same name length, key type and extensions: only the registration differs.
        issued = services.issuing.issue(f"certsas-bench-grants-{count:02d}",
                                        ocsp_url=services.responder.url)
        registry.put(Registration.with_grants(issued.certificate, grants_of(count)))
        headers[count] = headers_of(issued)
    return headers


def one_round(settings: Settings, calls: dict[str, TokenCall], audit_table: str,
              counts: Counts, monitor: rounds.GcMonitor, *, mirrored: bool
              ) -> dict[str, rounds.Section]:
    """The four sections with the audit write interleaved, and the four without, one after
    the other (the order mirrored round by round). Not mixed: an insert after other work
    costs more than inserts back to back (docs/performance.md), and mixed, one section
    with the write would follow the ones without it in every other slice."""
    broker = rounds.round_broker(settings, audit_table)
    brokers = {"warm": broker, "warm_without_audit_write": without_audit(broker)}
    sections: dict[str, rounds.Section] = {}
    for audit in reversed(AUDIT) if mirrored else AUDIT:
        chosen = brokers[audit]
        install(chosen)
        work: dict[str, tuple[Callable[[], bool], int]] = {}
        for name, call in calls.items():
            if name.startswith(f"{audit}/"):
                call.check_once()  # fills this broker's caches, and checks the answer once
                work[name] = (call, counts.calls)
        sections |= rounds.timed_round(work, rounds.CONTROLLED, monitor, slices=counts.slices,
                                       warmup=counts.warmup, mirrored=mirrored)
    return sections


def measure(services: Services, settings: Settings, call: TokenCall, counts: Counts
            ) -> dict[str, Any]:
    """``counts.rounds`` interleaved rounds (the machine as it is; not pinned); the broker
    that was installed is installed again afterwards."""
    previous = get_broker()
    headers = register(services)
    calls = {section(count, request, audit): call.to(headers[count], json.dumps(body).encode())
             for audit in AUDIT for request, body in REQUESTS.items() for count in GRANTS}
    tables = TableServiceClient.from_connection_string(services.azurite.connection_string)
    monitor = rounds.GcMonitor()
    results: list[dict[str, rounds.Section]] = []
    try:
        with monitor.installed():
            for turn in range(counts.rounds):
                table = f"BenchGrants{os.urandom(4).hex()}"
                tables.create_table(table)
                results.append(one_round(settings, calls, table, counts, monitor,
                                         mirrored=turn % 2 == 1))
                tables.delete_table(table)
    finally:
        install(previous)
    return summarise(counts, results)


def summarise(counts: Counts, results: list[dict[str, rounds.Section]]) -> dict[str, Any]:
    """Per section the p50 and CPU over rounds; per request the 20-grant p50 minus the
    1-grant one, round by round (both from the same slices), in ms."""
    names = list(results[0])
    differences = {
        f"{request}{'' if audit == 'warm' else '_without_audit_write'}": rounds.spread(
            [(r[section(20, request, audit)].p50_us - r[section(1, request, audit)].p50_us)
             / 1000 for r in results], 4)
        for audit in AUDIT for request in REQUESTS}
    return {
        "counts": dataclasses.asdict(counts),
        "grants": list(GRANTS),
        "blob": REQUESTS["blob"]["blob"],
        "p50_us": {name: rounds.spread([r[name].p50_us for r in results], 1) for name in names},
        "cpu_us_per_call": {name: rounds.spread([r[name].cpu_us for r in results], 1)
                            for name in names},
        "gc_collections_while_timed": sum(r[name].gc_collections for r in results
                                          for name in names),
        "difference_20_minus_1_ms": differences,
    }


def targets(results: dict[str, Any]) -> dict[str, Any]:
    """The warm token's p50 (as deployed, with the audit write): 20 grants no slower than 1
    by more than 0.02 ms, the larger of the container and blob medians."""
    differences = results["grants"]["difference_20_minus_1_ms"]
    reached = max(differences["container"]["median"], differences["blob"]["median"])
    return {"grants_20_minus_1_p50_ms": {"target": f"<= {TARGET_MS}", "reached": reached,
                                         "met": reached <= TARGET_MS}}


def table(figures: dict[str, Any]) -> str:
    lines = ["", f"1 grant vs 20 (blob {figures['blob']}), warm token p50 ms: median over "
                 f"{figures['counts']['rounds']} interleaved rounds (min-max)",
             f"  {'':<28}{'1 grant':>22}{'20 grants':>22}   20 - 1 (min to max)"]
    for audit in AUDIT:
        for request in REQUESTS:
            key = f"{request}{'' if audit == 'warm' else '_without_audit_write'}"
            label = f"{request}{'' if audit == 'warm' else ', no audit write'}"
            one, twenty = (_cell(figures["p50_us"][section(count, request, audit)])
                           for count in GRANTS)
            difference = figures["difference_20_minus_1_ms"][key]
            lines.append(f"  {label:<28}{one:>22}{twenty:>22}   {difference['median']:+.4f} "
                         f"({difference['min']:+.4f} to {difference['max']:+.4f})")
    return "\n".join(lines)


def _cell(figure: dict[str, Any]) -> str:
    return f"{figure['median'] / 1000:.3f} ({figure['min'] / 1000:.3f}-{figure['max'] / 1000:.3f})"
