"""``make demo``: the whole of certsas on one machine, checked step by step.

Azurite, a throw-away PKI, a local OCSP responder, the issuing CA's CRL on a local HTTP
server, and ``certsas serve --tls`` (the app
behind an emulated App Service front end); then ``certsas token`` gets a token that is
used against Blob Storage, and the refusals that matter are shown; a second app with
``REVOCATION_SOURCES=crl`` shows a refusal by the CRL alone; a second grant (another
container, only under ``in/``, write-only) serves the same certificate; last, its holder
registers the successor ``client-next.pem`` with ``certsas rotate`` (SPEC §4a), which then
gets tokens under the same grants, and the same rotation again is refused. Everything the demo
starts is stopped at the end, also on Ctrl-C or a failure. Exit 0 only if every step
succeeded.

    python scripts/demo.py [--workdir .dev]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import requests  # noqa: E402 - after the path so certsas imports from this checkout
from azure.data.tables import TableServiceClient  # noqa: E402
from azure.storage.blob import BlobClient, BlobServiceClient, ContainerClient  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402

from certsas.accounts import AZURITE_ACCOUNT, AZURITE_KEY  # noqa: E402
from certsas.crl.validation import distribution_point_url  # noqa: E402
from certsas.ocsp.checker import responder_url_of  # noqa: E402

CONTAINER = "demo"
INBOX = "demo-inbox"  # the second grant's container (SPEC §4)
PKI_FILES = ("trusted-ca-certs.pem", "issuing-ca.pem", "issuing-ca.key", "ocsp-signer.pem",
             "ocsp-signer.key", "client.pem", "client.key", "revoked-client.pem",
             "revoked-client.key", "untrusted-client.pem", "untrusted-client.key",
             "server.pem", "server.key", "issuing-ca.crl", "client-next.pem", "client-next.key")
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


# --- the steps -----------------------------------------------------------------------------


def start_azurite(demo: Demo) -> str:
    blob, table = pick_port(10000, "Azurite blob"), pick_port(10002, "Azurite table")
    queue = pick_port(10001, "Azurite queue")
    binary = REPO / "node_modules" / ".bin" / "azurite"
    if not binary.exists():
        raise DemoError(f"{shown(binary)} not found: run `npm ci` (make demo does)")
    say(f"starting Azurite on 127.0.0.1:{blob} (blob) and 127.0.0.1:{table} (table)")
    demo.start("Azurite", [str(binary), "--silent", "--inMemoryPersistence", "--disableTelemetry",
                           "--skipApiVersionCheck", "--loose",
                           "--blobHost", "127.0.0.1", "--blobPort", str(blob),
                           "--tableHost", "127.0.0.1", "--tablePort", str(table),
                           "--queueHost", "127.0.0.1", "--queuePort", str(queue)],
               (blob, table, queue))
    return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{blob}/{AZURITE_ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{table}/{AZURITE_ACCOUNT};")


def pki_problem(directory: Path) -> str | None:
    """Why the PKI in ``directory`` cannot be reused, or None."""
    missing = [name for name in PKI_FILES if not (directory / name).is_file()]
    if missing:
        return f"{missing[0]} is missing"
    soon = datetime.now(UTC) + timedelta(days=1)
    for name in PKI_FILES:
        if name.endswith(".pem"):
            for cert in x509.load_pem_x509_certificates((directory / name).read_bytes()):
                if cert.not_valid_after_utc < soon or cert.not_valid_before_utc > datetime.now(UTC):
                    return f"{name} is expired or about to expire"
    crl = x509.load_der_x509_crl((directory / "issuing-ca.crl").read_bytes())
    if crl.next_update_utc is None or crl.next_update_utc < soon:
        return "issuing-ca.crl is stale or about to be"
    return None


def prepare_pki(demo: Demo) -> None:
    problem = pki_problem(demo.pki) if demo.pki.exists() else "it does not exist yet"
    if problem is None:
        say(f"reusing the throw-away PKI in {shown(demo.pki)} (still valid)")
        return
    say(f"writing a throw-away PKI to {shown(demo.pki)} ({problem})")
    port = pick_port(7080, "OCSP responder")
    crl_port = pick_port(7081, "CRL server")
    done = demo.certsas("dev-pki", str(demo.pki.resolve()), "--force",
                        "--ocsp-url", f"http://127.0.0.1:{port}/ocsp",
                        "--crl-url", f"http://127.0.0.1:{crl_port}/issuing-ca.crl")
    if done.returncode != 0:
        raise DemoError(f"certsas dev-pki failed: {done.stderr.strip()}")
    lines = done.stdout.replace(str(demo.pki.resolve()), shown(demo.pki)).splitlines()
    print("\n".join("    " + line for line in lines[1:]), flush=True)


def start_ocsp_responder(demo: Demo) -> None:
    client = x509.load_pem_x509_certificate((demo.pki / "client.pem").read_bytes())
    url = responder_url_of(client) or "http://127.0.0.1:7080/ocsp"
    port = urlsplit(url).port or 80
    if not port_is_free(port):
        port = pick_port(port, "OCSP responder")
        # The certificates name a port that is taken; point the app at the one we got.
        demo.env["OCSP_RESPONDER_URL"] = f"http://127.0.0.1:{port}/ocsp"
    say(f"starting the OCSP responder on 127.0.0.1:{port} (revoked-client.pem is revoked)")
    pki = demo.pki.resolve()
    demo.start("OCSP responder", [
        sys.executable, "-m", "certsas.devtools.ocsp_responder",
        "--ca", str(pki / "issuing-ca.pem"), "--ca-key", str(pki / "issuing-ca.key"),
        "--signer", str(pki / "ocsp-signer.pem"), "--signer-key", str(pki / "ocsp-signer.key"),
        "--revoked", str(pki / "revoked-client.pem"), "--port", str(port)], (port,))


def start_crl_server(demo: Demo) -> None:
    client = x509.load_pem_x509_certificate((demo.pki / "client.pem").read_bytes())
    url = distribution_point_url(client) or "http://127.0.0.1:7081/issuing-ca.crl"
    parts = urlsplit(url)
    port = parts.port or 80
    if not port_is_free(port):
        port = pick_port(port, "CRL server")
        # The certificates name a port that is taken; point the app at the one we got.
        demo.env["CRL_URL"] = f"http://127.0.0.1:{port}{parts.path}"
    say(f"serving issuing-ca.crl on 127.0.0.1:{port}{parts.path} (it lists revoked-client.pem)")
    demo.start("CRL server", [
        sys.executable, "-m", "certsas.devtools.crl_server",
        str(demo.pki.resolve() / "issuing-ca.crl"), "--path", parts.path, "--port", str(port)],
        (port,))


def write_settings(demo: Demo, connection_string: str) -> Path:
    # Every setting is explicit: the developer's shell or local.settings.json must not leak in.
    demo.env.update({
        "TRUSTED_CA_CERTS": (demo.pki / "trusted-ca-certs.pem").read_text(encoding="ascii"),
        "STORAGE_CONNECTION_STRING": connection_string, "STORAGE_ACCOUNT_NAME": "",
        "AZURE_CLIENT_ID": "", "CERT_TABLE_NAME": "ClientCertificates",
        "AUDIT_TABLE_NAME": "TokenAudit", "CLIENT_CERT_HEADER": "X-ARR-ClientCert",
        "REVOCATION_MODE": "require", "OCSP_TIMEOUT_SECONDS": "3", "SAS_DEFAULT_TTL_MINUTES": "15",
        "SAS_MAX_TTL_MINUTES": "60", "REGISTRY_CACHE_SECONDS": "0",
        "REVOCATION_SOURCES": "ocsp,crl",
    })
    demo.env.setdefault("OCSP_RESPONDER_URL", "")
    demo.env.setdefault("CRL_URL", "")
    path = demo.workdir / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": demo.env}, indent=2) + "\n",
                    encoding="utf-8")
    say(f"settings written to {shown(path)} (REVOCATION_MODE=require, TRUSTED_CA_CERTS from "
        f"trusted-ca-certs.pem, STORAGE_CONNECTION_STRING for this Azurite)")
    return path


def prepare_storage(demo: Demo) -> None:
    say(f"creating the container '{CONTAINER}' and registering the clients "
        "(register creates the registry and audit tables)")
    connection = demo.env["STORAGE_CONNECTION_STRING"]
    BlobServiceClient.from_connection_string(connection).create_container(CONTAINER)
    # The revoked certificate is registered too, so it gets as far as the OCSP check.
    for name in ("client.pem", "revoked-client.pem"):
        done = demo.certsas("register", str(demo.pki.resolve() / name), "--container", CONTAINER,
                            "--permissions", "racwl", "--description", f"demo {name}")
        if done.returncode != 0:
            raise DemoError(f"certsas register failed: {done.stderr.strip()}")
        print(f"      {done.stdout.splitlines()[0]}", flush=True)


def start_server(demo: Demo, settings: Path, *, ports: tuple[int, int] = (7071, 7443),
                 name: str = "certsas serve", extra_env: dict[str, str] | None = None) -> str:
    port, tls_port = pick_port(ports[0], name), pick_port(ports[1], f"{name} --tls")
    say(f"starting {name} --tls: app on http://127.0.0.1:{port}/api, "
        f"App Service front end on https://localhost:{tls_port}/api")
    pki = demo.pki.resolve()
    demo.start(name, [
        sys.executable, "-m", "certsas", "serve", "--tls", "--port", str(port),
        "--tls-port", str(tls_port), "--tls-cert", str(pki / "server.pem"),
        "--tls-key", str(pki / "server.key"), "--app-dir", str(REPO),
        "--settings", str(settings.resolve())], (port, tls_port), extra_env)
    health = requests.get(f"http://127.0.0.1:{port}/api/health", timeout=10)
    say(f"GET /api/health: {health.status_code} {health.text}")
    return f"https://localhost:{tls_port}/api/token"


def token_args(demo: Demo, url: str, name: str) -> list[str]:
    pki = demo.pki.resolve()
    return ["token", "--url", url, "--cert", str(pki / f"{name}.pem"),
            "--key", str(pki / f"{name}.key"), "--ca", str(pki / "trusted-ca-certs.pem")]


def client_token(demo: Demo, url: str, what: str, *request: str) -> dict[str, Any] | None:
    """``certsas token`` for client.pem, recorded as the check ``what``; its answer if 200."""
    done = demo.certsas(*token_args(demo, url, "client"), *request)
    if done.returncode != 0:
        demo.record(what, "200", done.stderr.strip())
        return None
    demo.record(what, "200", "200")
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def check_good_token(demo: Demo, url: str) -> None:
    say("certsas token with the registered certificate (client.pem)")
    answer = client_token(demo, url, "token for client.pem")
    if answer is None:
        return
    print(f"      container={answer['container']} permissions={answer['permissions']} "
          f"expires_on={answer['expires_on']}", flush=True)
    say("using the SAS URL: upload a blob, download it, compare the bytes")
    container = ContainerClient.from_container_url(answer["url"])
    payload = f"hello from certsas at {datetime.now(UTC):%H:%M:%S}".encode()
    container.upload_blob("hello.txt", payload, overwrite=True)
    back = container.download_blob("hello.txt").readall()
    demo.record("blob round trip with the SAS URL", "same bytes",
                "same bytes" if back == payload else f"got {back!r}")


def check_refused(demo: Demo, url: str, name: str, expected: str, how: str = "",
                  *request: str) -> None:
    done = demo.certsas(*token_args(demo, url, name), *request)
    demo.record(f"{name}.pem refused{how}", expected, refusal(done))


def refusal(done: subprocess.CompletedProcess[str]) -> str:
    """``403 certificate_revoked`` from a refused ``certsas token`` or ``rotate`` (exit 3,
    ``refused: 403 CODE: message`` on stderr), shown as it came; else what it said."""
    line = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.stdout[:80]
    print(f"      {line}", flush=True)
    return line.split("refused: ", 1)[1].split(":", 1)[0] if "refused: " in line else line


def check_crl_alone(demo: Demo, settings: Path) -> None:
    say("a second app with REVOCATION_SOURCES=crl: the CRL alone decides (OCSP is not asked)")
    url = start_server(demo, settings, ports=(7072, 7444), name="certsas serve (CRL)",
                       extra_env={"REVOCATION_SOURCES": "crl"})
    done = demo.certsas(*token_args(demo, url, "client"))
    demo.record("token for client.pem, CRL source", "200",
                "200" if done.returncode == 0 else done.stderr.strip())
    check_refused(demo, url, "revoked-client", "403 certificate_revoked", " by the CRL")
    log = demo.children[-1].log.read_text(encoding="utf-8", errors="replace")
    demo.record("decision line names the source", "crl:revoked",
                "crl:revoked" if '"revocation": "crl:revoked"' in log else "not in the log")


def check_second_grant(demo: Demo, url: str) -> None:
    say(f"a second grant for client.pem: the container '{INBOX}', only blobs under in/, "
        "write-only (cw), at most 10 minutes")
    BlobServiceClient.from_connection_string(
        demo.env["STORAGE_CONNECTION_STRING"]).create_container(INBOX)
    done = demo.certsas("grant", thumbprint_of(demo, "client"), "--container", INBOX,
                        "--prefix", "in/", "--permissions", "cw", "--max-ttl-minutes", "10")
    if done.returncode != 0:
        raise DemoError(f"certsas grant failed: {done.stderr.strip()}")
    print("\n".join("      " + line for line in done.stdout.splitlines()), flush=True)
    answer = client_token(demo, url, "token under the second grant", "--container", INBOX,
                          "--blob", "in/report.csv")
    if answer is None:
        return
    print(f"      container={answer['container']} blob={answer['blob']} "
          f"permissions={answer['permissions']}", flush=True)
    BlobClient.from_blob_url(answer["url"]).upload_blob(b"report,1\n", overwrite=True)
    # Read back with the account key: the token itself may not read (cw).
    written = BlobServiceClient.from_connection_string(
        demo.env["STORAGE_CONNECTION_STRING"]).get_blob_client(INBOX, "in/report.csv")
    demo.record("upload with the second grant's token", "written",
                "written" if written.download_blob().readall() == b"report,1\n"
                else "not written")
    say("what the second grant does not allow: reading in/, writing elsewhere, no container")
    check_refused(demo, url, "client", "403 scope_not_allowed", " to read in/",
                  "--container", INBOX, "--blob", "in/report.csv", "--permissions", "r")
    check_refused(demo, url, "client", "403 scope_not_allowed", " outside in/",
                  "--container", INBOX, "--blob", "out/report.csv")
    check_refused(demo, url, "client", "400 invalid_request", " without a container")


def thumbprint_of(demo: Demo, name: str) -> str:
    cert = x509.load_pem_x509_certificate((demo.pki / f"{name}.pem").read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex().upper()


def check_rotation(demo: Demo, url: str) -> None:
    """SPEC §4a: client.pem's holder registers client-next.pem (the dev PKI's successor:
    same subject, new key, ends later) itself, over the same mutual TLS as for a token."""
    current, successor = thumbprint_of(demo, "client"), thumbprint_of(demo, "client-next")
    say("the operator lets client.pem's holder register its own successor")
    done = demo.certsas("rotation", current, "allow")
    if done.returncode != 0:
        raise DemoError(f"certsas rotation failed: {done.stderr.strip()}")
    print(f"      {done.stdout.strip()}", flush=True)
    say("certsas rotate: client.pem's holder registers client-next.pem, proving both keys")
    pki = demo.pki.resolve()
    rotate = ["rotate", "--url", url.removesuffix("/token") + "/rotate",
              "--cert", str(pki / "client.pem"), "--key", str(pki / "client.key"),
              "--new-cert", str(pki / "client-next.pem"),
              "--new-key", str(pki / "client-next.key"),
              "--ca", str(pki / "trusted-ca-certs.pem")]
    done = demo.certsas(*rotate)
    print("\n".join("      " + line for line in (done.stdout or done.stderr).splitlines()),
          flush=True)
    registered = done.returncode == 0 and done.stdout.startswith(f"registered {successor}\n")
    demo.record("rotate client.pem to client-next.pem", "registered client-next.pem",
                "registered client-next.pem" if registered else (done.stderr or done.stdout).strip())
    done = demo.certsas("show", successor)
    print("\n".join("      " + line for line in done.stdout.splitlines()), flush=True)
    rotated_from = [line.split()[2:] for line in done.stdout.splitlines()
                    if line.split()[:2] == ["rotated", "from"]]
    demo.record("new registration is rotated from client.pem", "rotated from client.pem",
                "rotated from client.pem" if rotated_from == [[current]]
                else f"rotated from {rotated_from or 'nothing'}")
    say("a token for client-next.pem under the grants it took over: read hello.txt with it")
    done = demo.certsas(*token_args(demo, url, "client-next"), "--container", CONTAINER,
                        "--blob", "hello.txt", "--permissions", "r")
    got = done.stderr.strip() or "no answer"
    if done.returncode == 0:
        answer = json.loads(done.stdout)
        back = BlobClient.from_blob_url(answer["url"]).download_blob().readall()
        got = "read" if back.startswith(b"hello from certsas") else f"got {back!r}"
    demo.record("blob read with client-next.pem's token", "read", got)
    say("the same rotation again: client-next.pem is registered already")
    demo.record("second rotate to client-next.pem refused", "403 successor_invalid",
                refusal(demo.certsas(*rotate)))


def check_spoofing(demo: Demo, url: str) -> None:
    pki = demo.pki
    revoked = x509.load_pem_x509_certificate((pki / "revoked-client.pem").read_bytes())
    revoked_b64 = base64.b64encode(revoked.public_bytes(Encoding.DER)).decode()
    good = x509.load_pem_x509_certificate((pki / "client.pem").read_bytes())
    good_b64 = base64.b64encode(good.public_bytes(Encoding.DER)).decode()
    verify = str(pki / "trusted-ca-certs.pem")
    say("spoofing: client.pem over TLS, sending revoked-client.pem in x-arr-clientcert")
    answer = requests.post(url, headers={"x-arr-clientcert": revoked_b64}, verify=verify,
                           cert=(str(pki / "client.pem"), str(pki / "client.key")), timeout=15)
    got = f"{answer.status_code} {answer.json().get('error')}"
    if answer.status_code == 200:
        # The audit table says whose token it was: it must be client.pem's, every time.
        holders = audited_thumbprints(demo)
        mine = good.fingerprint(hashes.SHA256()).hex().upper()
        got = "200 for client.pem" if holders == {mine} else f"200 for {sorted(holders)}"
    demo.record("spoofed header overwritten by the front end", "200 for client.pem", got)
    say("spoofing: no client certificate, sending client.pem in X-ARR-ClientCert")
    try:
        blind = requests.post(url, headers={"X-ARR-ClientCert": good_b64}, verify=verify,
                              timeout=15)
        got = f"answered {blind.status_code}"
    except requests.exceptions.ConnectionError:
        got = "TLS handshake refused"
    demo.record("no client certificate, spoofed header", "TLS handshake refused", got)


def audited_thumbprints(demo: Demo) -> set[str]:
    tables = TableServiceClient.from_connection_string(demo.env["STORAGE_CONNECTION_STRING"])
    audit = tables.get_table_client(demo.env["AUDIT_TABLE_NAME"])
    return {str(entity["Thumbprint"]) for entity in audit.list_entities()}


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


def run(demo: Demo) -> bool:
    connection_string = start_azurite(demo)
    prepare_pki(demo)
    start_ocsp_responder(demo)
    start_crl_server(demo)
    settings = write_settings(demo, connection_string)
    prepare_storage(demo)
    url = start_server(demo, settings)
    check_good_token(demo, url)
    say("certsas token with revoked-client.pem (the OCSP responder says revoked)")
    check_refused(demo, url, "revoked-client", "403 certificate_revoked")
    say("certsas token with untrusted-client.pem (from a CA nobody trusts; TLS lets it in)")
    check_refused(demo, url, "untrusted-client", "403 certificate_not_trusted")
    check_spoofing(demo, url)
    check_crl_alone(demo, settings)
    # Last: with two containers, client.pem must name one in every request from here on.
    check_second_grant(demo, url)
    check_rotation(demo, url)
    return summary(demo)


@contextlib.contextmanager
def interrupted_by_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so the clean-up below always runs."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workdir", type=Path, default=REPO / ".dev",
                        help="PKI, settings and logs go here (default: .dev)")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    demo = Demo(args.workdir)
    status = 1
    with interrupted_by_signals():
        try:
            status = 0 if run(demo) else 1
        except KeyboardInterrupt:
            say("interrupted")
            status = 130
        except (DemoError, OSError, requests.RequestException, subprocess.SubprocessError) as exc:
            say(f"demo failed: {exc}")
        finally:
            stop_everything(demo)
    outcome = {0: "demo succeeded", 130: "demo interrupted"}.get(status, "demo FAILED")
    say(outcome if status == 0 else f"{outcome}; logs in {shown(demo.workdir / 'logs')}")
    return status


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


if __name__ == "__main__":
    raise SystemExit(main())
