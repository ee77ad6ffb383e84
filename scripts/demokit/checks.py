"""The demo's checks: tokens granted and used, the refusals that matter, a second grant,
and a rotation; each recorded on the :class:`Demo` with what it expected."""

from __future__ import annotations

import base64
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobClient, BlobServiceClient, ContainerClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from demokit.harness import Demo, DemoError, say
from demokit.services import CONTAINER, start_server

INBOX = "demo-inbox"  # the second grant's container (SPEC §4)


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
