"""The demo's harness: the processes it starts and stops, the checks it records, and
how it talks to the person watching (``scripts/demo.py`` runs the steps)."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parents[2]
# Every process the demo starts carries this, so nothing it started can hide afterwards.
RUN_MARKER = "CERTSAS_DEMO_RUN"


class DemoError(Exception):
    """A step could not run at all; the demo stops."""


def say(text: str) -> None:
    # A reader that went away (`make demo | head`) must not stop the clean-up.
    with contextlib.suppress(BrokenPipeError):
        print(f"==> {text}", flush=True)


def shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd()))
    return str(path)


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        # As servers bind: old connections in TIME_WAIT do not make a port busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def pick_port(preferred: int, what: str) -> int:
    if port_is_free(preferred):
        return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    say(f"port {preferred} ({what}) is taken: using {port} instead")
    return port


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    ports: tuple[int, ...]

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join("    " + line for line in text.splitlines()[-lines:])


@dataclass(frozen=True)
class Check:
    what: str
    expected: str
    got: str

    @property
    def ok(self) -> bool:
        return self.got == self.expected


@dataclass
class Demo:
    workdir: Path
    children: list[Child] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pki(self) -> Path:
        return self.workdir / "pki"

    def child_env(self) -> dict[str, str]:
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        return {**os.environ, **self.env, "PYTHONPATH": path,
                RUN_MARKER: str(self.workdir.resolve())}

    def start(self, name: str, argv: Sequence[str], ports: tuple[int, ...],
              extra_env: dict[str, str] | None = None) -> Child:
        log = self.workdir / "logs" / f"{name.replace(' ', '-')}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            # A session of its own: the whole group is stopped at the end, grandchildren too.
            process = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, cwd=self.workdir,
                                       env=self.child_env() | (extra_env or {}),
                                       start_new_session=True)
        child = Child(name, process, log, ports)
        self.children.append(child)
        for port in ports:
            wait_for_port(child, port)
        return child

    def certsas(self, *args: str) -> subprocess.CompletedProcess[str]:
        # Children get absolute paths (they run in the workdir); people get short ones.
        readable = [shown(Path(a)) if os.path.isabs(a) else a for a in args]
        print(f"    $ certsas {shlex.join(readable)}", flush=True)
        return subprocess.run([sys.executable, "-m", "certsas", *args], capture_output=True,
                              text=True, cwd=self.workdir, env=self.child_env(), timeout=120,
                              check=False)

    def record(self, what: str, expected: str, got: str) -> None:
        check = Check(what, expected, got)
        self.checks.append(check)
        print(f"    {'ok  ' if check.ok else 'FAIL'} {what}: {got}", flush=True)

    def stop_all(self) -> list[int]:
        """Stop every child, newest first; the ports they held."""
        ports: list[int] = []
        while self.children:
            child = self.children.pop()
            stop_group(child.process)
            ports.extend(child.ports)
        return ports


def wait_for_port(child: Child, port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise DemoError(f"{child.name} exited with {child.process.returncode}:\n{child.tail()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise DemoError(f"{child.name} is not listening on {port} after {timeout:g}s:\n{child.tail()}")


def stop_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    # The leader may be gone while its children linger; the group's id still reaches them.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def summary(demo: Demo) -> bool:
    width = max(len(c.what) for c in demo.checks)
    exp_width = max(len(c.expected) for c in demo.checks)
    print(flush=True)
    print(f"  {'step':<{width}}  {'expected':<{exp_width}}  result")
    print(f"  {'-' * width}  {'-' * exp_width}  ------")
    for check in demo.checks:
        print(f"  {check.what:<{width}}  {check.expected:<{exp_width}}  "
              f"{'ok' if check.ok else 'FAIL: ' + check.got}")
    passed = sum(c.ok for c in demo.checks)
    print(f"\n  {passed}/{len(demo.checks)} checks passed\n", flush=True)
    return passed == len(demo.checks)


@contextlib.contextmanager
def interrupted_by_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so the clean-up (:func:`stop_everything`) always runs."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop_everything(demo: Demo) -> None:
    names = ", ".join(c.name for c in reversed(demo.children))
    # Neither a second Ctrl-C nor a SIGTERM may cut the clean-up short.
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        ports = demo.stop_all()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not names:
        return
    busy = [port for port in ports if not port_is_free(port)]
    state = f"still busy: {' '.join(map(str, busy))}" if busy else "all free"
    say(f"stopped {names}; ports {' '.join(map(str, ports))}: {state}")
