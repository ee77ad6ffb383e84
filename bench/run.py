"""certsas benchmark: prints a table and writes JSON. Figures only; nothing here is a timed test.

    python -m bench.run [--smoke | --quick] [--rounds-only | --grants-only] [--uncontrolled]
                        [--out FILE]

Starts a real Azurite and our OCSP responder on 127.0.0.1 (``REVOCATION_MODE=require``),
then measures warm token issuance through the function (1 and 8 threads), the
same with every cache off (the naive per-request design), the no-I/O floor, the
parts of the token path one by one, a registration of 1 grant against one of 20, the
rotate call, and cold start in fresh processes. The exit
status is non-zero only when a request failed its correctness check (not a 200).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import crl, grants, rotate, rounds, scale, scenarios
from bench.cold import measure_cold_start
from bench.measure import repeat
from bench.services import Services, running_services

ROOT = Path(__file__).resolve().parent.parent
THREADS = 8
TARGETS = {"warm_over_floor": 3.0, "naive_over_warm": 10.0, "import_over_deps": 1.2}


@dataclass(frozen=True)
class Plan:
    warm: int = 2000
    warm_threaded: int = 2000
    naive: int = 600
    naive_threaded: int = 600
    floor: int = 3000
    cheap: int = 2000
    io: int = 300
    warmup: int = 20
    cold_runs: int = 5
    cold_warmup: int = 1
    crl_entries: int = crl.ENTRIES
    scale_processes: int = 4
    scale_threads: int = 16
    scale_tokens_per_process: int = 1500
    scale_seconds: float = 60.0
    rounds: rounds.Counts = field(default_factory=rounds.Counts)
    grants: grants.Counts = field(default_factory=grants.Counts)
    rotate: rotate.Counts = field(default_factory=rotate.Counts)


SMOKE = Plan(warm=20, warm_threaded=24, naive=8, naive_threaded=16, floor=20, cheap=10, io=5,
             warmup=3, cold_runs=2, cold_warmup=0, crl_entries=1000, scale_processes=2,
             scale_threads=4, scale_tokens_per_process=10, scale_seconds=30.0,
             rounds=rounds.Counts(rounds=2, floor=20, insert=10, warm=20,
                                  warm_without_audit_write=20, warmup=3, slices=4,
                                  azurite_warmup=20),
             grants=grants.Counts(rounds=2, calls=10, warmup=3, slices=2),
             rotate=rotate.Counts(per_key_type=3, warmup=1))
# About a fifth of the full counts: to try the method on a busy machine (figures labelled).
QUICK = Plan(warm=400, warm_threaded=400, naive=120, naive_threaded=120, floor=600, cheap=400,
             io=60, warmup=10, cold_runs=3, cold_warmup=1, crl_entries=20_000, scale_processes=2,
             scale_threads=8, scale_tokens_per_process=300, scale_seconds=30.0,
             rounds=rounds.Counts(rounds=5, floor=300, insert=120, warm=250,
                                  warm_without_audit_write=250, warmup=20,
                                  slices=20, azurite_warmup=1500),
             grants=grants.Counts(rounds=5, calls=150, warmup=20, slices=10),
             rotate=rotate.Counts(per_key_type=30, warmup=3))


def handler(services: Services, name: str) -> scenarios.Handler:
    """The user function ``name`` of ``function_app.app``, imported with the bench's settings."""
    os.environ.update(services.env)
    import function_app
    from certsas.devtools.routes import find_route

    return find_route(function_app.app, name).handler


def token_call(services: Services) -> scenarios.TokenCall:
    """The ``token`` user function with the bench's headers; a fresh broker installed."""
    from certsas.runtime import reset_broker

    call = scenarios.TokenCall(handler(services, "token"), services.headers)
    reset_broker()
    return call


def measure_rounds(services: Services, plan: Plan, controls: rounds.Controls) -> dict[str, Any]:
    """Only the interleaved rounds (``--rounds-only``)."""
    from certsas.config import Settings

    call = token_call(services)
    scenarios.warm_up(call, plan.warmup, THREADS)
    return rounds.measure(services, Settings.from_env(os.environ), call, plan.rounds, controls)


def measure_issue_20(services: Services, plan: Plan) -> dict[str, Any]:
    """1 grant against 20, and the rotate call; each with the seconds it took."""
    from certsas.config import Settings

    settings = Settings.from_env(os.environ | services.env)
    call = token_call(services)
    started = time.monotonic()
    figures: dict[str, Any] = {"grants": grants.measure(services, settings, call, plan.grants)}
    figures["grants"]["elapsed_seconds"] = round(time.monotonic() - started, 1)
    started = time.monotonic()
    figures["rotate"] = rotate.measure(services, settings, call, handler(services, "rotate"),
                                       plan.rotate)
    figures["rotate"]["elapsed_seconds"] = round(time.monotonic() - started, 1)
    return figures


def measure(services: Services, plan: Plan, controls: rounds.Controls
            ) -> tuple[dict[str, Any], str]:
    """Everything but cold start, in this process: (results, printed profile)."""
    os.environ.update(services.env)
    from certsas.config import Settings
    from certsas.runtime import get_broker, reset_broker

    settings = Settings.from_env(os.environ)
    cpu = time.process_time()
    floor = repeat(scenarios.floor_work(services, settings), plan.floor)
    floor_cpu = time.process_time() - cpu
    parts = scenarios.components(services, settings, cheap=plan.cheap, io_count=plan.io)

    call = token_call(services)
    scenarios.warm_up(call, plan.warmup, THREADS)
    warm_broker = get_broker()
    profile = scenarios.profile_one(call)
    cpu = time.process_time()
    warm = scenarios.load(call, services, plan.warm, 1)
    warm_cpu = time.process_time() - cpu
    warm8 = scenarios.load(call, services, plan.warm_threaded, THREADS)

    scenarios.install(scenarios.without_audit(warm_broker))
    scenarios.warm_up(call, plan.warmup, THREADS)
    no_audit = scenarios.load(call, services, plan.warm, 1)

    naive_broker = scenarios.naive_broker(settings)
    scenarios.install(naive_broker)
    scenarios.warm_up(call, plan.warmup, THREADS)
    naive = scenarios.load(call, services, plan.naive, 1)
    naive8 = scenarios.load(call, services, plan.naive_threaded, THREADS)

    scenarios.install(scenarios.without_audit(naive_broker))
    naive_no_audit = scenarios.load(call, services, plan.naive, 1)
    interleaved = rounds.measure(services, settings, call, plan.rounds, controls)
    crl_figures = crl.measure(services, settings, call, scenarios.install, plan.warm,
                              entries=plan.crl_entries)
    issue_20 = measure_issue_20(services, plan)
    reset_broker()

    def token_load(result: scenarios.Load) -> dict[str, Any]:
        return {**result.summary.to_json(), "ocsp_requests": result.ocsp_requests,
                **({"first_error": result.summary.first_error} if result.summary.errors else {})}

    results = {
        "warm": {"single": token_load(warm), "threads_8": token_load(warm8)},
        "naive": {"single": token_load(naive), "threads_8": token_load(naive8)},
        "floor": floor.to_json(),
        "components": {name: summary.to_json() for name, summary in parts.items()},
        # Not designs of the app (SPEC §5 writes the audit record before answering): what the
        # token path costs around that one write, to show where the time goes.
        "crl": crl_figures,
        "diagnostics": {"warm_without_audit_write": token_load(no_audit),
                        "naive_without_audit_write": token_load(naive_no_audit)},
        "cpu": scale.cpu_per_token(warm_cpu, warm.summary.count, floor_cpu, floor.count),
        "rounds": interleaved,
        **issue_20,
    }
    return results, profile


def ratios(results: dict[str, Any]) -> dict[str, float]:
    warm, naive, cold = results["warm"], results["naive"], results["cold_start"]
    diagnostics = results["diagnostics"]
    return {
        "warm_over_floor": round(warm["single"]["p50_us"] / results["floor"]["p50_us"], 2),
        "naive_over_warm": round(warm["single"]["rps"] / naive["single"]["rps"], 2),
        "naive_over_warm_8_threads": round(warm["threads_8"]["rps"] / naive["threads_8"]["rps"], 2),
        "naive_over_warm_without_audit_write": round(
            diagnostics["warm_without_audit_write"]["rps"]
            / diagnostics["naive_without_audit_write"]["rps"], 2),
        # Median over the interleaved rounds (bench/rounds.py), like the other floor ratios.
        "warm_over_floor_without_audit_write":
            results["rounds"]["free"]["ratios"]["warm_over_floor_without_audit_write"]["median"],
        "import_over_deps": round(cold["import_function_app_ms"] / cold["bare_dependency_import_ms"],
                                  2),
    }


def targets(results: dict[str, Any]) -> dict[str, Any]:
    errors_8 = results["warm"]["threads_8"]["errors"] + results["naive"]["threads_8"]["errors"]
    return {
        "warm_over_floor": {"target": f"<= {TARGETS['warm_over_floor']}",
                            "reached": results["warm_over_floor"],
                            "met": results["warm_over_floor"] <= TARGETS["warm_over_floor"]},
        "naive_over_warm": {"target": f">= {TARGETS['naive_over_warm']}",
                            "reached": results["naive_over_warm"],
                            "met": results["naive_over_warm"] >= TARGETS["naive_over_warm"]},
        "import_over_deps": {"target": f"<= {TARGETS['import_over_deps']}",
                             "reached": results["import_over_deps"],
                             "met": results["import_over_deps"] <= TARGETS["import_over_deps"]},
        "errors_at_8_threads": {"target": "0", "reached": errors_8, "met": errors_8 == 0},
    }


# --- output --------------------------------------------------------------------------


def _ms(us: float) -> str:
    return f"{us / 1000:8.3f}"


def table(results: dict[str, Any]) -> str:
    lines = [
        f"certsas benchmark ({results['counts']} counts): Python "
        f"{results['machine']['python']}, {results['machine']['cpus']} CPUs, Azurite and OCSP "
        "responder on 127.0.0.1, REVOCATION_MODE=require",
        "",
        f"{'token issuance through the function':<44}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'p99 ms':>9}{'errors':>8}{'OCSP calls':>12}",
    ]
    rows = [
        ("warm (caches on), 1 thread", results["warm"]["single"]),
        ("warm (caches on), 8 threads", results["warm"]["threads_8"]),
        ("naive (every cache off), 1 thread", results["naive"]["single"]),
        ("naive (every cache off), 8 threads", results["naive"]["threads_8"]),
        ("diagnostic: warm, no audit write, 1 thread",
         results["diagnostics"]["warm_without_audit_write"]),
        ("diagnostic: naive, no audit write, 1 thread",
         results["diagnostics"]["naive_without_audit_write"]),
    ]
    for label, row in rows:
        lines.append(f"  {label:<42}{row['rps']:>9.0f}{_ms(row['p50_us']):>9}{_ms(row['p95_us']):>9}"
                     f"{_ms(row['p99_us']):>9}{row['errors']:>8}{row['ocsp_requests']:>12}")
    lines += ["", f"{'one step alone (no HTTP layer)':<44}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"]
    steps = [("floor: parse+thumbprint+verify+sign", results["floor"])]
    steps += [(f"  {name}", row) for name, row in results["components"].items()]
    for label, row in steps:
        lines.append(f"  {label:<42}{_ms(row['p50_us']):>9}{_ms(row['p95_us']):>9}"
                     f"{_ms(row['p99_us']):>9}")
    cold = results["cold_start"]
    lines += [
        "",
        f"cold start, fresh process, median of {cold['runs']}{'':<10}ms",
        f"  {'import function_app':<42}{cold['import_function_app_ms']:>9.1f}",
        f"  {'bare import of the dependencies':<42}{cold['bare_dependency_import_ms']:>9.1f}",
        f"  {'import function_app after its own deps':<42}{cold['own_import_ms']:>9.1f}",
        f"  {'import function_app -> first token':<42}{cold['first_token_ms']:>9.1f}",
        f"  {'whole process (interpreter to exit)':<42}{cold['app_process_ms']:>9.1f}",
        "",
        f"{'ratios':<44}{'reached':>9}{'target':>9}{'met':>6}",
    ]
    for key, target in results["targets"].items():
        spread = (f"  rounds {target['spread'][0]}-{target['spread'][1]}"
                  if "spread" in target else "")
        lines.append(f"  {key:<42}{target['reached']!s:>9}{target['target']:>9}"
                     f"{'yes' if target['met'] else 'NO':>6}{spread}")
    for key in ("naive_over_warm_8_threads", "naive_over_warm_without_audit_write",
                "warm_over_floor_without_audit_write"):
        lines.append(f"  {key:<42}{results[key]!s:>9}")
    figures = results["crl"]
    lines += [
        "",
        f"CRL source, {figures['entries']:,} entries ({figures['crl_bytes']:,} bytes) on 127.0.0.1",
        f"  {'first use (download, parse, index), median':<42}{figures['first_use_median_ms']:>9.1f} ms",
        f"  {'memory added: tracemalloc peak / RSS':<42}{figures['memory_tracemalloc_peak_mb']:>9.1f}"
        f" / {figures['memory_rss_added_mb']:.1f} MB",
        f"  {'warm token p50: revocation off / crl':<42}"
        f"{figures['warm_token_p50_us']['revocation_off'] / 1000:>9.3f} / "
        f"{figures['warm_token_p50_us']['crl'] / 1000:.3f} ms "
        f"(difference {figures['warm_token_p50_difference_ms']:+.4f} ms)",
        f"  {'  same, without the audit write':<42}"
        f"{figures['warm_token_without_audit_write_p50_us']['revocation_off'] / 1000:>9.3f} / "
        f"{figures['warm_token_without_audit_write_p50_us']['crl'] / 1000:.3f} ms "
        f"(difference {figures['warm_token_without_audit_write_p50_difference_ms']:+.4f} ms)",
        f"  {'warm CRL check alone, p50':<42}{figures['warm_crl_check_alone_p50_us']:>9.2f} us",
    ]
    return "\n".join(lines)


def error_count(results: dict[str, Any]) -> int:
    loads = [*results["warm"].values(), *results["naive"].values(),
             *results["diagnostics"].values()]
    return (sum(int(row["errors"]) for row in loads) + int(results["cold_start"]["errors"])
            + scale.error_count(results) + rotate.error_count(results))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="tiny counts: a few seconds in all")
    size.add_argument("--quick", action="store_true",
                      help="about a fifth of the full counts, to try the method on a busy machine")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--rounds-only", action="store_true",
                      help="only the interleaved rounds (bench/rounds.py); writes --out if given")
    only.add_argument("--grants-only", action="store_true",
                      help="only 1 grant against 20 (bench/grants.py) and the rotate call "
                           "(bench/rotate.py); writes --out if given")
    parser.add_argument("--uncontrolled", action="store_true",
                        help="rounds without their controls (one audit table, no gc.freeze, "
                             "no warm-up): the protocol before, for comparison")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file (default bench/results.json; none with --rounds-only or "
                             "--grants-only)")
    args = parser.parse_args(argv)
    plan, name = (SMOKE, "smoke") if args.smoke else (QUICK, "quick") if args.quick else (
        Plan(), "full")
    controls = rounds.UNCONTROLLED if args.uncontrolled else rounds.CONTROLLED
    partial = args.rounds_only or args.grants_only
    out = args.out or (None if partial else ROOT / "bench" / "results.json")
    before, started = _load_average(), time.monotonic()
    with tempfile.TemporaryDirectory(prefix="certsas-bench-") as workdir, \
            running_services(Path(workdir)) as services:
        if args.rounds_only:
            results: dict[str, Any] = {"rounds": measure_rounds(services, plan, controls)}
        elif args.grants_only:
            results = measure_issue_20(services, plan)
        else:
            results, profile = measure(services, plan, controls)
            results["scale"] = scale.measure_services(services, plan)
            results["cold_start"] = measure_cold_start(
                dict(os.environ) | services.env, services.header_value, ROOT,
                runs=plan.cold_runs, warmup=plan.cold_warmup,
            )
    results = {
        "smoke": args.smoke,
        "counts": name,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count() or 0,
                    "platform": platform.platform(),
                    "load_average_before": before, "load_average_after": _load_average()},
        "elapsed_seconds": round(time.monotonic() - started, 1),
        "plan": asdict(plan),
        **results,
    }
    if args.rounds_only:
        print(f"machine load average before / after: {before} / {_load_average()}")
        print(rounds.table(results["rounds"]))
        errors = 0
    elif args.grants_only:
        print(f"machine load average before / after: {before} / {_load_average()}")
        print(grants.table(results["grants"]))
        print(rotate.table(results["rotate"]))
        errors = rotate.error_count(results)
    else:
        results |= ratios(results) | scale.ratios(results)
        results["single_shot"] = scale.single_shot(results)
        results["targets"] = targets(results) | scale.targets(results) | grants.targets(results)
        print("profile of one warm request (cProfile, top 15 by cumulative time)")
        print(profile)
        print()
        print(table(results))
        print(scale.table(results))
        print(rounds.table(results["rounds"]))
        print(grants.table(results["grants"]))
        print(rotate.table(results["rotate"]))
        errors = error_count(results)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {out}")
    if errors:
        print(f"error: {errors} request(s) failed their correctness check", file=sys.stderr)
        return 1
    return 0


def _load_average() -> list[float]:
    """The 1/5/15-minute load: other work on the machine shows up in the figures."""
    return [round(value, 2) for value in os.getloadavg()]


if __name__ == "__main__":
    raise SystemExit(main())
