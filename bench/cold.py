"""Cold start: fresh processes, timed from the first import to the first token.

The parent side (:func:`measure_cold_start`) runs this module as a child,
``python -m bench.cold MODE``, once per mode and run. Only the standard library is
imported at the top, so the child's clock starts before any of certsas or the SDKs:

- ``app``: ``import function_app``, then one ``POST /api/token`` through the function
  (a fresh process: storage clients built, connections opened, OCSP asked);
- ``deps``: the bare import of the app's runtime dependencies;
- ``own``: the dependencies function_app itself imports, then ``import function_app``
  (what certsas's own modules and settings check add on top).

Each child prints one JSON line of nanosecond figures.
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DEPENDENCIES = ("azure.functions", "azure.storage.blob", "azure.data.tables", "azure.identity",
                "cryptography.x509", "requests")
# What function_app's import pulls in (azure.identity and requests are imported lazily).
APP_DEPENDENCIES = ("azure.functions", "azure.storage.blob", "azure.data.tables", "cryptography.x509")
CERT_VARIABLE = "CERTSAS_BENCH_CLIENT_CERT"  # the forwarded header value, for the child
MODES = ("deps", "app", "own")


class _Context:
    invocation_id = "bench-cold-start"


def _app_child() -> dict[str, int]:
    start = time.perf_counter_ns()
    import function_app

    imported = time.perf_counter_ns()
    import azure.functions as func

    from certsas.devtools.routes import find_route

    handler = find_route(function_app.app, "token").handler
    request = func.HttpRequest(method="POST", url="http://localhost:7071/api/token",
                               headers={"X-ARR-ClientCert": os.environ[CERT_VARIABLE]},
                               params={}, body=b"")
    response = handler(request, _Context())
    done = time.perf_counter_ns()
    return {"import_ns": imported - start, "first_token_ns": done - start,
            "status": int(response.status_code)}


def _deps_child() -> dict[str, int]:
    start = time.perf_counter_ns()
    for name in DEPENDENCIES:
        importlib.import_module(name)
    return {"import_ns": time.perf_counter_ns() - start}


def _own_child() -> dict[str, int]:
    for name in APP_DEPENDENCIES:
        importlib.import_module(name)
    start = time.perf_counter_ns()
    import function_app  # noqa: F401 - the import is what is measured

    return {"import_ns": time.perf_counter_ns() - start}


def child(mode: str) -> dict[str, int]:
    return {"deps": _deps_child, "app": _app_child, "own": _own_child}[mode]()


# --- parent side ---------------------------------------------------------------------


def _run_child(mode: str, env: dict[str, str], cwd: Path) -> dict[str, int]:
    start = time.perf_counter_ns()
    completed = subprocess.run(
        [sys.executable, "-m", "bench.cold", mode], env=env, cwd=cwd, capture_output=True,
        text=True, timeout=120, check=False,
    )
    wall = time.perf_counter_ns() - start
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"cold-start child {mode!r} failed ({completed.returncode}): "
                           f"{completed.stderr.strip()[-2000:]}")
    figures: dict[str, int] = json.loads(lines[-1])
    figures["process_ns"] = wall
    return figures


def _median_ms(samples: list[dict[str, int]], key: str) -> float:
    return round(statistics.median(sample[key] for sample in samples) / 1e6, 1)


def measure_cold_start(env: dict[str, str], header_value: str, cwd: Path, *, runs: int,
                       warmup: int) -> dict[str, Any]:
    """Medians over ``runs`` rounds of every mode, interleaved; ``warmup`` rounds are discarded
    (they compile bytecode and fill the page cache)."""
    child_env = {**env, CERT_VARIABLE: header_value}
    samples: dict[str, list[dict[str, int]]] = {mode: [] for mode in MODES}
    for round_number in range(warmup + runs):
        for mode in MODES:
            figures = _run_child(mode, child_env, cwd)
            if round_number >= warmup:
                samples[mode].append(figures)
    errors = sum(1 for sample in samples["app"] if sample["status"] != 200)
    return {
        "runs": runs,
        "errors": errors,
        "import_function_app_ms": _median_ms(samples["app"], "import_ns"),
        "first_token_ms": _median_ms(samples["app"], "first_token_ns"),
        "app_process_ms": _median_ms(samples["app"], "process_ns"),
        "bare_dependency_import_ms": _median_ms(samples["deps"], "import_ns"),
        "own_import_ms": _median_ms(samples["own"], "import_ns"),
        "samples_import_function_app_ms": [round(s["import_ns"] / 1e6, 1) for s in samples["app"]],
        "samples_first_token_ms": [round(s["first_token_ns"] / 1e6, 1) for s in samples["app"]],
        "samples_bare_dependency_import_ms": [round(s["import_ns"] / 1e6, 1)
                                              for s in samples["deps"]],
    }


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1])), flush=True)
