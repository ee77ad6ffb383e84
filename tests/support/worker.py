"""Microsoft's Python worker library, in an environment of its own, indexing the app.

``azure-functions-runtime`` is the worker code that Azure runs for Python 3.13 apps, and the
one worker on PyPI that knows the v2 programming model (``azure-functions-worker`` stopped
there at 1.1.9, in 2020). It requires Python 3.13 and azure-functions 2.x, so it cannot
share the suite's environment (3.11, azure-functions 1.x): ``.venv-worker`` is built from the
machine's ``python3.13`` once, with the app's other dependencies at the versions the lock
pins, and rebuilt when those pins change.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.support import ROOT
from tests.support.required import require

WORKER_VENV = ROOT / ".venv-worker"
WORKER_SCRIPT = ROOT / "tests" / "support" / "worker_index.py"
# The worker and what it brings, pinned: azure-functions 2.x is its dependency, not the app's.
WORKER_PACKAGES = ("azure-functions-runtime==1.3.0", "azure-functions==2.3.0",
                   "azurefunctions-extensions-base==1.2.0")
# The app's own runtime dependencies (requirements.in less azure-functions).
APP_PACKAGES = ("azure-storage-blob", "azure-data-tables", "azure-identity", "cryptography",
                "requests")


def _app_pins() -> list[str]:
    """``name==version`` of every package the lock pins, but azure-functions."""
    pins = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line and not line[0].isspace() and "==" in line and not line.startswith("#"):
            pin = line.split()[0]
            if not pin.startswith("azure-functions=="):
                pins.append(pin)
    return pins


def _stamp() -> str:
    return hashlib.sha256(json.dumps([WORKER_PACKAGES, _app_pins()]).encode()).hexdigest()


def python313() -> str | None:
    """A Python 3.13 that runs: on PATH, or among pyenv's versions (whose shim on PATH runs
    only when that version is selected)."""
    candidates = [shutil.which("python3.13"),
                  *sorted(str(p) for p in (Path.home() / ".pyenv" / "versions").glob(
                      "3.13*/bin/python3.13"))]
    for candidate in candidates:
        if candidate is None:
            continue
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info >= (3, 13))"],
                               capture_output=True, text=True, check=False)
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    return None


def worker_python() -> Path:
    """The worker environment's interpreter, built if missing or stale."""
    python = WORKER_VENV / "bin" / "python"
    stamp = WORKER_VENV / ".stamp"
    if python.exists() and stamp.exists() and stamp.read_text() == _stamp():
        return python
    base = python313()
    require(base, "a Python 3.13 (azure-functions-runtime requires it)")
    assert base is not None
    if WORKER_VENV.exists():
        shutil.rmtree(WORKER_VENV)
    subprocess.run([base, "-m", "venv", str(WORKER_VENV)], check=True)
    constraints = WORKER_VENV / "constraints.txt"
    constraints.write_text("\n".join(_app_pins()) + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *WORKER_PACKAGES, *APP_PACKAGES, "-c", str(constraints)], check=True)
    stamp.write_text(_stamp())
    return python


def index(app_dir: Path, settings: dict[str, str]) -> tuple[dict[str, Any], str]:
    """What the worker's indexing of ``app_dir`` returns with ``settings`` as the
    environment, and what the app logged to stderr."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1", **settings}
    done = subprocess.run([str(worker_python()), str(WORKER_SCRIPT), str(app_dir)], env=env,
                          cwd=app_dir, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    document: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return document, done.stderr
