"""``certsas token`` (--format, --exec, the files people have) against the served app and
Azurite, and ``certsas rotate`` against a loopback stand-in of /api/rotate."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    PrivateFormat,
    pkcs12,
)

from certsas.devtools.pki import Issued, new_key
from tests.support.cli import run
from tests.support.rotate_standin import RotateStandIn, sha256_hex, verify_proof
from tests.support.served import CONTAINER, DevFiles, Served

HELLO = b"hello from certsas\n"


def token_args(served: Served, *extra: str) -> list[str]:
    cert, key = served.files.pair("client")
    return ["token", "--url", served.tls_token, "--cert", cert, "--key", key,
            "--ca", served.files.ca, *extra]


@pytest.fixture
def hello(served: Served) -> Served:
    """The client registered, and hello.txt in its container."""
    served.register(served.files.pki.client)
    blobs = BlobServiceClient.from_connection_string(served.env["STORAGE_CONNECTION_STRING"])
    blobs.get_blob_client(CONTAINER, "hello.txt").upload_blob(HELLO, overwrite=True)
    return served


def bash(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", script, "bash", *args], capture_output=True, text=True,
                          timeout=60, check=False)


# --- --format -------------------------------------------------------------------------------


def test_format_env_is_evaluable_in_bash_and_works_with_curl(
        capsys: pytest.CaptureFixture[str], hello: Served) -> None:
    code, out, _ = run(capsys, *token_args(hello, "--blob", "hello.txt", "--format", "env"))
    assert code == 0 and len(out) == 2
    assert out[0].startswith("export CERTSAS_SAS_URL='http://127.0.0.1:")
    assert out[1].startswith("export CERTSAS_SAS_TOKEN='")
    shown = bash('eval "$1" && printf "%s\\n%s\\n" "$CERTSAS_SAS_URL" "$CERTSAS_SAS_TOKEN"',
                 "\n".join(out))
    assert shown.returncode == 0, shown.stderr
    url, token = shown.stdout.splitlines()
    assert url.endswith(f"/{CONTAINER}/hello.txt?{token}") and "&sig=" in token
    fetched = bash('eval "$1" && curl -sf "$CERTSAS_SAS_URL"', "\n".join(out))
    assert (fetched.returncode, fetched.stdout.encode()) == (0, HELLO)


def test_format_url_and_json(capsys: pytest.CaptureFixture[str], hello: Served) -> None:
    code, out, _ = run(capsys, *token_args(hello, "--blob", "hello.txt", "--format", "url"))
    assert code == 0 and len(out) == 1 and f"/{CONTAINER}/hello.txt?" in out[0]
    code, out, _ = run(capsys, *token_args(hello, "--format", "json", "--permissions", "rl"))
    answer = json.loads("\n".join(out))
    assert code == 0 and (answer["resource"], answer["permissions"]) == ("container", "rl")
    assert answer["url"].endswith("?" + answer["token"]) and answer["blob"] is None


# --- --exec ---------------------------------------------------------------------------------


def test_exec_runs_curl_with_a_working_sas_url(capsys: pytest.CaptureFixture[str],
                                               hello: Served, tmp_path: Path) -> None:
    target = tmp_path / "hello.txt"
    code, out, _ = run(capsys, *token_args(hello, "--blob", "hello.txt", "--exec", "--", "sh",
                                           "-c", 'curl -sf -o "$0" "$CERTSAS_SAS_URL"',
                                           str(target)))
    assert (code, out) == (0, []) and target.read_bytes() == HELLO


def test_exec_passes_the_exit_status_through(capsys: pytest.CaptureFixture[str],
                                             hello: Served) -> None:
    probe = ("import os, sys; url, token = os.environ['CERTSAS_SAS_URL'], "
             "os.environ['CERTSAS_SAS_TOKEN']; sys.exit(7 if url.endswith('?' + token) else 1)")
    assert run(capsys, *token_args(hello, "--exec", "--", sys.executable, "-c", probe))[0] == 7
    # curl's own status for a 404 (22), through certsas token.
    code, _, _ = run(capsys, *token_args(hello, "--blob", "missing.txt", "--exec", "--", "sh",
                                         "-c", 'curl -sf -o /dev/null "$CERTSAS_SAS_URL"'))
    assert code == 22
    code, _, err = run(capsys, *token_args(hello, "--exec", "--", "no-such-command-certsas"))
    assert code == 127 and err == ("certsas token: error: no-such-command-certsas: command "
                                   "not found\n")
    code, _, err = run(capsys, *token_args(hello, "--exec", "--", "sh", "-c", "kill -TERM $$"))
    assert code == 128 + 15


def test_exec_is_not_run_when_certsas_refuses(capsys: pytest.CaptureFixture[str],
                                              served: Served, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    code, _, err = run(capsys, *token_args(served, "--exec", "--", "touch", str(marker)))
    assert code == 3 and err.startswith("certsas token: refused: 403 certificate_not_registered")
    assert not marker.exists()


def test_exec_and_a_command_go_together(capsys: pytest.CaptureFixture[str],
                                        served: Served) -> None:
    code, _, err = run(capsys, *token_args(served, "--exec"))
    assert code == 1 and err == "certsas token: error: --exec needs a command: --exec -- CMD " \
                                "[ARGS...]\n"
    code, _, err = run(capsys, *token_args(served, "--", "curl"))
    assert code == 1 and "unexpected argument 'curl' (a command to run follows --exec --)" in err


# --- the files people have (issue 22 item 6) ------------------------------------------------


def pfx(issued: Issued, path: Path, password: bytes) -> str:
    path.write_bytes(pkcs12.serialize_key_and_certificates(
        b"client", issued.key, issued.certificate, None, BestAvailableEncryption(password)))
    return str(path)


def test_token_with_a_pfx_and_its_password(capsys: pytest.CaptureFixture[str], hello: Served,
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    bundle = pfx(hello.files.pki.client, tmp_path / "client.pfx", b"pfx-pw")
    args = ["token", "--url", hello.tls_token, "--cert", bundle, "--ca", hello.files.ca,
            "--format", "url"]
    code, _, err = run(capsys, *args)
    assert (code, err) == (1, f"certsas token: error: {bundle} is encrypted: set "
                              f"CERTSAS_KEY_PASSWORD to its password, or run on a terminal to "
                              f"be asked\n")
    monkeypatch.setenv("CERTSAS_KEY_PASSWORD", "pfx-pw")
    code, out, _ = run(capsys, *args)
    assert code == 0 and f"/{CONTAINER}?" in out[0]
    monkeypatch.setenv("PARTNER_PFX_PASSWORD", "wrong")
    code, _, err = run(capsys, *args, "--password-env", "PARTNER_PFX_PASSWORD")
    assert code == 1 and err.startswith(f"certsas token: error: cannot open {bundle}: wrong "
                                        f"password") and "openssl pkcs12 -in" in err


def test_token_with_a_der_certificate_and_an_encrypted_key(
        capsys: pytest.CaptureFixture[str], hello: Served, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    client = hello.files.pki.client
    (tmp_path / "client.cer").write_bytes(client.der)
    (tmp_path / "client.key").write_bytes(client.key.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"key-pw")))
    monkeypatch.setenv("CERTSAS_KEY_PASSWORD", "key-pw")
    code, out, _ = run(capsys, "token", "--url", hello.tls_token, "--cert",
                       str(tmp_path / "client.cer"), "--key", str(tmp_path / "client.key"),
                       "--ca", hello.files.ca, "--format", "url")
    assert code == 0 and f"/{CONTAINER}?" in out[0]


# --- rotate ---------------------------------------------------------------------------------


@pytest.fixture
def stand_in(files: DevFiles) -> Iterator[RotateStandIn]:
    with RotateStandIn(files.path("server.pem"), files.path("server.key"),
                       files.path("trusted-ca-certs.pem")) as stand_in:
        yield stand_in


def write_pair(issued: Issued, folder: Path, name: str) -> tuple[str, str]:
    (folder / f"{name}.pem").write_bytes(issued.pem)
    (folder / f"{name}.key").write_bytes(issued.key_pem)
    return str(folder / f"{name}.pem"), str(folder / f"{name}.key")


def rotate_args(stand_in: RotateStandIn, files: DevFiles, new: tuple[str, str]) -> list[str]:
    cert, key = files.pair("client")
    return ["rotate", "--url", stand_in.url, "--cert", cert, "--key", key, "--ca", files.ca,
            "--new-cert", new[0], "--new-key", new[1]]


@pytest.mark.parametrize("kind", ["ec", "rsa", "ed25519"])
def test_rotate_proves_both_keys_and_prints_the_new_thumbprint(
        capsys: pytest.CaptureFixture[str], files: DevFiles, stand_in: RotateStandIn,
        tmp_path: Path, kind: str) -> None:
    key = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else new_key(kind)
    successor = files.pki.issuing.issue("certsas-dev-client", key=key)
    code, out, err = run(capsys, *rotate_args(stand_in, files, write_pair(successor, tmp_path,
                                                                          "next")))
    assert (code, err) == (0, "")
    current = sha256_hex(files.pki.client.certificate)
    assert out == [f"registered {sha256_hex(successor.certificate)}",
                   f"  not after     {successor.certificate.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}",
                   f"  rotated from  {current} (still registered: it works until it is "
                   f"disabled or expires)"]
    assert len(stand_in.received) == 1
    assert stand_in.received[0]["certificate"].encode() == successor.pem


def test_rotate_with_a_pfx_successor(capsys: pytest.CaptureFixture[str], files: DevFiles,
                                     stand_in: RotateStandIn, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    successor = files.pki.issuing.issue("certsas-dev-client")
    bundle = pfx(successor, tmp_path / "next.pfx", b"next-pw")
    monkeypatch.setenv("CERTSAS_NEW_KEY_PASSWORD", "next-pw")
    cert, key = files.pair("client")
    code, out, _ = run(capsys, "rotate", "--url", stand_in.url, "--cert", cert, "--key", key,
                       "--ca", files.ca, "--new-cert", bundle)
    assert code == 0 and out[0] == f"registered {sha256_hex(successor.certificate)}"


def test_rotate_refusals_and_local_errors(capsys: pytest.CaptureFixture[str], files: DevFiles,
                                          stand_in: RotateStandIn, tmp_path: Path) -> None:
    successor = files.pki.issuing.issue("certsas-dev-client")
    new = write_pair(successor, tmp_path, "next")
    stand_in.not_allowed.add(sha256_hex(files.pki.client.certificate))
    code, out, err = run(capsys, *rotate_args(stand_in, files, new))
    assert (code, out) == (3, [])
    assert err == ("certsas rotate: refused: 403 rotation_not_allowed: This registration does "
                   "not allow its holder to rotate it.\n")
    stand_in.not_allowed.clear()

    other_key = str(tmp_path / "other.key")
    Path(other_key).write_bytes(files.pki.issuing.issue("x").key_pem)
    code, _, err = run(capsys, *rotate_args(stand_in, files, (new[0], other_key)))
    assert code == 1 and err == f"certsas rotate: error: {other_key} is not the key of {new[0]}\n"

    dsa_successor = files.pki.issuing.issue("certsas-dev-client",
                                            key=dsa.generate_private_key(2048))  # type: ignore[arg-type]
    code, _, err = run(capsys, *rotate_args(stand_in, files,
                                            write_pair(dsa_successor, tmp_path, "dsa")))
    assert code == 1 and err == ("certsas rotate: error: a DSAPrivateKey key cannot sign a "
                                 "rotation proof: certsas accepts RSA, ECDSA and Ed25519 keys\n")
    assert stand_in.received == []


def test_the_stand_in_checks_the_proof_for_itself(files: DevFiles) -> None:
    """The stand-in's verification is not the client's code: a proof over other text fails."""
    successor = files.pki.issuing.issue("certsas-dev-client")
    assert isinstance(successor.key, ec.EllipticCurvePrivateKey)
    signature = successor.key.sign(b"certsas-rotate:other", ec.ECDSA(hashes.SHA256()))
    assert not verify_proof(files.pki.client.certificate, successor.certificate, signature)
