"""What the demo runs before its checks: Azurite, the throw-away PKI, the OCSP responder,
the CRL server, the settings, the container and registrations, and ``certsas serve --tls``."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import requests
from azure.storage.blob import BlobServiceClient
from cryptography import x509

from certsas.accounts import AZURITE_ACCOUNT, AZURITE_KEY
from certsas.crl.validation import distribution_point_url
from certsas.ocsp.checker import responder_url_of
from demokit.harness import REPO, Demo, DemoError, pick_port, port_is_free, say, shown

CONTAINER = "demo"  # the first grant's container, client.pem's and revoked-client.pem's
PKI_FILES = ("trusted-ca-certs.pem", "issuing-ca.pem", "issuing-ca.key", "ocsp-signer.pem",
             "ocsp-signer.key", "client.pem", "client.key", "revoked-client.pem",
             "revoked-client.key", "untrusted-client.pem", "untrusted-client.key",
             "server.pem", "server.key", "issuing-ca.crl", "client-next.pem", "client-next.key")


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
