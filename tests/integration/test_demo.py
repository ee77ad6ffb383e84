"""``make demo`` end to end: every step succeeds, and nothing it started outlives it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.slow


def processes_mentioning(marker: str) -> list[str]:
    """Live processes whose command line or environment names ``marker`` (a /proc scan)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone already, or not ours to read
            continue
        if marker.encode() in cmdline or marker.encode() in environ:
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name}: {command}")
    return found


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_demo_runs_every_step_and_leaves_nothing_behind(tmp_path: Path) -> None:
    # Relative, with a space: every path the demo hands its children must survive both.
    workdir = tmp_path / "demo run"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"),
                           "--workdir", "demo run"],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path, check=False,
                          stdin=subprocess.DEVNULL)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    for line in ("==> starting Azurite on 127.0.0.1:",
                 "ok   token for client.pem: 200",
                 "ok   blob round trip with the SAS URL: same bytes",
                 "ok   revoked-client.pem refused: 403 certificate_revoked",
                 "ok   untrusted-client.pem refused: 403 certificate_not_trusted",
                 "ok   spoofed header overwritten by the front end: 200 for client.pem",
                 "ok   no client certificate, spoofed header: TLS handshake refused",
                 "ok   token for client.pem, CRL source: 200",
                 "ok   revoked-client.pem refused by the CRL: 403 certificate_revoked",
                 "ok   decision line names the source: crl:revoked",
                 "ok   token under the second grant: 200",
                 "ok   upload with the second grant's token: written",
                 "ok   client.pem refused to read in/: 403 scope_not_allowed",
                 "ok   client.pem refused outside in/: 403 scope_not_allowed",
                 "ok   client.pem refused without a container: 400 invalid_request",
                 "ok   rotate client.pem to client-next.pem: registered client-next.pem",
                 "ok   new registration is rotated from client.pem: rotated from client.pem",
                 "ok   blob read with client-next.pem's token: read",
                 "ok   second rotate to client-next.pem refused: 403 successor_invalid",
                 "18/18 checks passed",
                 "==> demo succeeded"):
        assert line in out, out
    assert "FAIL" not in out

    stopped = re.search(r"==> stopped certsas serve \(CRL\), certsas serve, CRL server, "
                        r"OCSP responder, Azurite; ports ([\d ]+): all free", out)
    assert stopped, out
    ports = [int(p) for p in stopped.group(1).split()]
    assert len(ports) == 9
    assert not [p for p in ports if listening(p)]
    assert processes_mentioning(str(workdir.resolve())) == []
