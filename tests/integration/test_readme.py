"""The README's newcomer block, run as written: a README that drifts fails the suite.

The block between ``<!-- newcomer:begin -->`` and ``<!-- newcomer:end -->`` runs as a
person pastes it into a terminal: job control on (so each background job is a process
group of its own, as in an interactive shell), and pasted twice in a row, in a fresh copy
of the tracked files (``.venv`` and ``node_modules`` linked in, as after ``make deps``),
on free ports it takes from the environment, with nothing of the developer's environment
but PATH. ``set -e`` stops at the first failing step.

After each paste nothing may listen on its ports any more: the block's own stop step
must have stopped all it started. That is checked before the test's safety net runs
(which ends every process of the session, whatever its process group): checked after
it, a leftover Azurite (npx's node child once was one) would never be seen.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
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
def ports() -> dict[str, str]:
    return {name: str(free_port()) for name in PORTS}


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


# Pasted twice; after each paste, whatever still listens on the block's ports is named.
HARNESS = """\
set -em
check_ports() {
  for port in $CERTSAS_PORT $TLS_PORT $OCSP_PORT $BLOB_PORT $QUEUE_PORT $TABLE_PORT; do
    if (: > "/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "STILL LISTENING $port"; fi
  done
}
echo "=== paste 1"
source ./newcomer.sh
check_ports
echo "=== paste 2"
source ./newcomer.sh
check_ports
echo "=== done"
"""


def test_the_newcomer_block_runs_as_pasted_twice(clone: Path, ports: dict[str, str],
                                                 tmp_path: Path) -> None:
    (clone / "newcomer.sh").write_text(newcomer_block(), encoding="utf-8")
    (tmp_path / "harness.sh").write_text(HARNESS, encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    # No settings, no virtual environment: a fresh terminal, with the ports the test chose.
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                           if not p.startswith(str(ROOT)))
    env = {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8", **ports}
    log = tmp_path / "newcomer.log"
    with log.open("wb") as out:
        process = subprocess.Popen(["bash", str(tmp_path / "harness.sh")], cwd=clone, env=env,
                                   stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            code = process.wait(timeout=400)
            # Before the safety net: what the block left running is the block's fault.
            still = [name for name, port in ports.items() if _listening(int(port))]
        finally:
            _stop_session(process.pid)
    output = log.read_text(encoding="utf-8", errors="replace")
    print(output)  # shown with -s, and on failure
    assert code == 0, output
    assert not still and "STILL LISTENING" not in output, (still, output)
    assert output.splitlines()[-1] == "=== done", output
    for paste in output.split("=== paste ")[1:]:
        lines = paste.splitlines()
        assert any(line.startswith("registered ") for line in lines), paste
        assert any(line.startswith("created container reports at ") for line in lines), paste
        answer = next(line for line in lines if line.startswith('{"token": '))
        assert '"container": "reports"' in answer, paste
        assert "hello from certsas" in lines, paste  # the blob, put and got with the token
    assert "Traceback" not in output and "not supported by Azurite" not in output, output


def _stop_session(sid: int) -> None:
    """Safety net for a block that failed half-way: every process of the session the test
    started (with job control each job has its own process group, so a group is not
    enough). A passing block stopped its own."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        members = _session_members(sid)
        if not members:
            return
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _session_members(sid):
            time.sleep(0.1)


def _session_members(sid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.getsid(int(entry.name)) == sid:
                    members.append(int(entry.name))
    return members


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
