"""Rotation as an operator and a partner live it (SPEC §4a, §6): ``certsas register
--allow-rotation``, then ``certsas rotate`` over the served app's mutual TLS front end,
a token for the successor used against Azurite, the same rotation refused, and ``certsas
audit`` telling the story in order. Only the command line and the HTTP surface are used;
and docs/grants-and-rotation.md's OpenSSL and curl recipe, run as printed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient

from certsas.thumbprints import sha256_thumbprint
from tests.support import ROOT
from tests.support.cli import run
from tests.support.served import CONTAINER, Served

EXIT_REFUSED = 3


def identity(served: Served, name: str) -> list[str]:
    cert, key = served.files.pair(name)
    return ["--cert", cert, "--key", key, "--ca", served.files.ca]


def rotate_args(served: Served) -> list[str]:
    cert, key = served.files.pair("client-next")
    return ["rotate", "--url", served.tls_token.removesuffix("token") + "rotate",
            *identity(served, "client"), "--new-cert", cert, "--new-key", key]


def token(capsys: pytest.CaptureFixture[str], served: Served, name: str) -> dict[str, str]:
    code, out, err = run(capsys, "token", "--url", served.tls_token, *identity(served, name))
    assert code == 0, err
    answer: dict[str, str] = json.loads("\n".join(out))
    return answer


def test_a_partner_rotates_with_the_cli_and_the_successor_takes_over(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        served: Served) -> None:
    monkeypatch.chdir(tmp_path)  # no local.settings.json: the served app's settings alone
    pki = served.files.pki
    current, successor = sha256_thumbprint(pki.client.der), sha256_thumbprint(pki.client_next.der)
    code, _, err = run(capsys, "register", served.files.path("client.pem").as_posix(),
                       "--container", CONTAINER, "--permissions", "racwl", "--allow-rotation")
    assert code == 0, err
    before = token(capsys, served, "client")

    code, out, err = run(capsys, *rotate_args(served))
    assert code == 0, err
    assert out[0] == f"registered {successor}"
    assert out[2].split()[:3] == ["rotated", "from", current]

    # The successor's token works against Storage, under the grant it took over.
    after = token(capsys, served, "client-next")
    assert after["container"] == CONTAINER and after["permissions"] == "racwl"
    container = ContainerClient.from_container_url(after["url"])
    container.upload_blob("rotated.txt", b"from the successor", overwrite=True)
    assert container.download_blob("rotated.txt").readall() == b"from the successor"

    code, out, err = run(capsys, *rotate_args(served))
    assert (code, out) == (EXIT_REFUSED, [])
    assert err.strip() == ("certsas rotate: refused: 403 successor_invalid: "
                           "The successor certificate is already registered.")

    code, out, err = run(capsys, "audit", "--json")
    assert code == 0, err
    records = json.loads("\n".join(out))
    assert [(r["kind"], r["thumbprint"], r.get("successor") or None) for r in records] == [
        ("token", current, None), ("rotation", current, successor), ("token", successor, None)]
    assert [r["expires_on"] for r in records if r["kind"] == "token"] == [
        before["expires_on"], after["expires_on"]]
    code, out, _ = run(capsys, "audit")
    assert code == 0
    header, *lines, total = out
    assert header.split()[:2] == ["ISSUED", "THUMBPRINT"]
    assert [line.split()[1] for line in lines] == [current, current, successor]
    assert f"rotated to {successor[:9]}" in lines[1]
    assert total.startswith("2 token(s) issued") and total.endswith(", 1 rotation(s)")


def openssl_recipe() -> str:
    text = (ROOT / "docs" / "grants-and-rotation.md").read_text(encoding="utf-8")
    found = re.search(r"^Without certsas installed.*?^```bash\n(.*?)^```", text, re.S | re.M)
    assert found is not None
    return found.group(1)


def test_the_openssl_and_curl_recipe_registers_the_successor(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        served: Served) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "register", served.files.path("client.pem").as_posix(),
                       "--container", CONTAINER, "--allow-rotation")
    assert code == 0, err
    for mine, theirs in (("current", "client"), ("next", "client-next")):
        for suffix in (".pem", ".key"):
            shutil.copy(served.files.path(theirs + suffix), tmp_path / (mine + suffix))
    # The only edits: the endpoint's address, and curl's trust in the dev CA.
    script = openssl_recipe().replace("https://<app>.azurewebsites.net/api/rotate",
                                      served.tls_token.removesuffix("token") + "rotate")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "CURL_CA_BUNDLE": served.files.ca})
    assert done.returncode == 0, done.stderr
    pki = served.files.pki
    assert json.loads(done.stdout) == {
        "thumbprint": sha256_thumbprint(pki.client_next.der),
        "rotated_from": sha256_thumbprint(pki.client.der),
        "not_after": f"{pki.client_next.certificate.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"}
    stored = served.registry.get(sha256_thumbprint(pki.client_next.der))
    assert stored is not None and stored.rotated_from == sha256_thumbprint(pki.client.der)
