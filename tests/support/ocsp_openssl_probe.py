"""Run ``openssl ocsp`` as a responder and OcspChecker against it; print JSON outcomes.

    python tests/support/ocsp_openssl_probe.py netns CONFIG.json   # inside `unshare -n`
    python tests/support/ocsp_openssl_probe.py shim CONFIG.json    # no namespace available

``netns``: ``openssl ocsp -port`` binds every address, so the test runs this probe
in a private network namespace where only ``lo`` exists; the probe brings it up.
``shim``: ``openssl ocsp`` answers each request in its file mode (``-reqin`` /
``-respout``) behind a small HTTP server bound to 127.0.0.1; still openssl answering.

CONFIG (paths relative to its directory): ``port``, ``ca`` (issuing CA PEM),
``signer``/``signer_key`` (responder), ``index`` (openssl's index.txt), ``badsig``,
and ``certs``: name -> leaf PEM. Output: name -> {"outcome", "detail"}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certsas.clientcert import PresentedCertificate
from certsas.config import RevocationMode
from certsas.errors import Refusal
from certsas.ocsp.checker import OcspChecker
from certsas.revocation import RevocationPolicy
from certsas.verification import VerifiedCertificate


def responder_arguments(config: dict[str, Any], workdir: Path) -> list[str]:
    """What every ``openssl ocsp`` responder run here shares."""
    arguments = [
        "openssl", "ocsp", "-index", str(workdir / config["index"]), "-CA",
        str(workdir / config["ca"]), "-rsigner", str(workdir / config["signer"]),
        "-rkey", str(workdir / config["signer_key"]), "-nmin", "5",
    ]
    return [*arguments, "-badsig"] if config.get("badsig") else arguments


def wait_until_listening(log: Path, timeout: float = 10.0) -> None:
    """Wait for openssl's "ACCEPT" line. Not a probe connection: openssl's one-at-a-time
    server waits forever on a connection that closes without sending a request."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and "ACCEPT" in log.read_text(errors="replace"):
            return
        time.sleep(0.02)
    raise TimeoutError(f"openssl ocsp did not start listening: {log.read_text(errors='replace')}")


@contextmanager
def openssl_on_port(config: dict[str, Any], workdir: Path) -> Iterator[None]:
    """``openssl ocsp -port``: only ever inside a private network namespace."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "openssl-ocsp.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [*responder_arguments(config, workdir), "-port", str(config["port"]),
                 "-ignore_err"],
                stdout=output, stderr=subprocess.STDOUT,
            )
        try:
            wait_until_listening(log)
            yield
        finally:
            process.terminate()
            process.wait(timeout=10)


@contextmanager
def openssl_behind_shim(config: dict[str, Any], workdir: Path) -> Iterator[None]:
    """A loopback HTTP server that hands each request to ``openssl ocsp -reqin``."""
    arguments = responder_arguments(config, workdir)

    class Shim(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with tempfile.TemporaryDirectory() as scratch:
                request_path, response_path = Path(scratch, "req.der"), Path(scratch, "resp.der")
                request_path.write_bytes(request)
                subprocess.run([*arguments, "-reqin", str(request_path),
                                "-respout", str(response_path)], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                body = response_path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/ocsp-response")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", config["port"]), Shim)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def outcomes(config: dict[str, Any], workdir: Path) -> dict[str, dict[str, str]]:
    """Check every certificate with OcspChecker (require mode, AIA URL, no cache)."""
    issuer = x509.load_pem_x509_certificate((workdir / config["ca"]).read_bytes())
    checker = RevocationPolicy(RevocationMode.REQUIRE, [OcspChecker(
        responder_url=None, timeout_seconds=5.0, cache_max_seconds=0)])
    results = {}
    for name, path in config["certs"].items():
        leaf = x509.load_pem_x509_certificate((workdir / path).read_bytes())
        presented = PresentedCertificate.from_der(leaf.public_bytes(Encoding.DER))
        verified = VerifiedCertificate(presented, (leaf, issuer))
        try:
            results[name] = {"outcome": checker.check(verified).value, "detail": ""}
        except Refusal as refusal:
            results[name] = {"outcome": refusal.code, "detail": refusal.detail}
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("how", choices=["netns", "shim"])
    parser.add_argument("config", type=Path)
    args = parser.parse_args()
    config = json.loads(args.config.read_text())
    workdir = args.config.parent
    # Only loopback is wanted; a proxy from the environment would take the request elsewhere.
    for variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                     "ALL_PROXY"):
        os.environ.pop(variable, None)
    serve = openssl_on_port if args.how == "netns" else openssl_behind_shim
    with serve(config, workdir):
        print(json.dumps(outcomes(config, workdir)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
