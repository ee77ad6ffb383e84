"""The README's newcomer block, run as written: a README that drifts fails the suite.

The block between ``<!-- newcomer:begin -->`` and ``<!-- newcomer:end -->`` runs under
``bash -e`` in a fresh copy of the tracked files (``.venv`` and ``node_modules`` linked
in, as after ``make deps``), on free ports it takes from the environment, with nothing
of the developer's environment but PATH. Everything it starts is in one process group,
stopped afterwards whatever happened.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT
from tests.support.azurite import free_port

BLOCK = re.compile(r"<!-- newcomer:begin -->\s*```bash\n(.*?)```\s*<!-- newcomer:end -->", re.S)
PORTS = ("CERTSAS_PORT", "TLS_PORT", "OCSP_PORT", "BLOB_PORT", "QUEUE_PORT", "TABLE_PORT")


def newcomer_block() -> str:
    found = BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(found) == 1, "README.md must hold exactly one newcomer block"
    return str(found[0])


# The Makefile's stamps and what they are made from (its `deps` rules).
DEPENDENCY_STAMPS = {
    ".venv/.installed": ("requirements.txt", "requirements-dev.txt", "pyproject.toml"),
    "node_modules/.installed": ("package.json", "package-lock.json"),
}


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """The tracked files, as a clone has them (times kept, so `make deps` sees it is done)."""
    target = tmp_path / "certsas"
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for shared in (".venv", "node_modules"):
        (target / shared).symlink_to(ROOT / shared)
    # The block's `make deps` must find the shared environments done, never reinstall
    # them from this copy: an editable install made here would point the developer's
    # .venv at a temporary folder. So no prerequisite of theirs is newer than its stamp
    # (under `make test` that already holds; a test run straight after editing
    # pyproject.toml would otherwise reinstall).
    for stamp, prerequisites in DEPENDENCY_STAMPS.items():
        made = (ROOT / stamp).stat().st_mtime
        for name in prerequisites:
            os.utime(target / name, (made - 1, made - 1))
    return target


@pytest.fixture
def ports() -> Iterator[dict[str, str]]:
    chosen = {name: str(free_port()) for name in PORTS}
    yield chosen
    # What the block started, it stopped: nothing may listen on its ports any more.
    still = [name for name, port in chosen.items() if _listening(int(port))]
    assert not still, f"still listening after the block: {still}"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_the_newcomer_block_runs_as_written(clone: Path, ports: dict[str, str],
                                            tmp_path: Path) -> None:
    script = tmp_path / "newcomer.sh"
    script.write_text(newcomer_block(), encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    # No settings, no virtual environment: a fresh terminal, with the ports the test chose.
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                           if not p.startswith(str(ROOT)))
    env = {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8", **ports}
    log = tmp_path / "newcomer.log"
    with log.open("wb") as out:
        process = subprocess.Popen(["bash", "-e", str(script)], cwd=clone, env=env,
                                   stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            code = process.wait(timeout=240)
        finally:
            _stop_group(process.pid)
    output = log.read_text(encoding="utf-8", errors="replace")
    print(output)  # shown with -s, and on failure
    assert code == 0, output
    lines = output.splitlines()
    assert any(line.startswith("registered ") for line in lines), output
    assert "created container reports" in lines, output
    answer = next(line for line in lines if line.startswith('{"token": '))
    assert '"container": "reports"' in answer, output
    assert "hello from certsas" in lines, output  # the blob, put and got with the token
    assert "Traceback" not in output and "not supported by Azurite" not in output, output


def _stop_group(pgid: int) -> None:
    """Safety net for a block that failed half-way; a passing block stopped its own."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_the_readmes_links_stay_inside_the_repository() -> None:
    """A clone has only what git tracks: a link to ../shared/SPEC.md was dead in every one."""
    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.splitlines())
    targets = [t for t in LINK.findall((ROOT / "README.md").read_text(encoding="utf-8"))
               if "://" not in t]
    assert "docs/contract.md" in targets
    for target in targets:
        resolved = (ROOT / target).resolve()
        assert resolved.is_relative_to(ROOT), f"{target} is outside the repository"
        inside = str(resolved.relative_to(ROOT))
        assert inside in tracked or any(t.startswith(inside + "/") for t in tracked), target
