"""A partner's machine: a fresh virtual environment with only requirements-client.txt and the
package (--no-deps) runs the long job of test_client, in real time, against a real
`certsas serve --tls` process (the emulated App Service front end) and Azurite.

It is also the real-time half of test_client's first test: a one-minute token really expires
(Azurite refuses it afterwards) while the job, which outlives it, never sees an error, and the
app issues exactly the tokens the refresh rule implies.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableServiceClient
from azure.storage.blob import ContainerClient

from certsas.registration import Registration
from tests.support import ROOT
from tests.support.azurite import Azurite
from tests.support.client_scenario import TTL_MINUTES, expected_fetches
from tests.support.served import CONTAINER, DevFiles
from tests.support.stack import app_env, build_stack

STEPS, STEP_SECONDS = 6, 13.0  # 78 s: fetches at 0 and 52 s; the first token dies at 60 s
SERVER_ONLY = ("azure.functions", "azure.data.tables", "azure.identity")


def pip(venv: Path, *args: str) -> None:
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", *args], check=True, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("partner") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip(venv, "--require-hashes", "-r", str(ROOT / "requirements-client.txt"))
    pip(venv, "--no-deps", str(ROOT))
    return venv


def absent(venv: Path, module: str) -> bool:
    probe = (f"import importlib.util, sys\ntry:\n    found = importlib.util.find_spec({module!r})"
             f"\nexcept ModuleNotFoundError:\n    found = None\nsys.exit(0 if found is None else 1)")
    return subprocess.run([str(venv / "bin" / "python"), "-c", probe], timeout=60).returncode == 0


@pytest.fixture
def serve_tls(monkeypatch: pytest.MonkeyPatch, azurite: Azurite, files: DevFiles,
              fresh_tables: tuple[str, str], tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`certsas serve --tls` on free ports, the dev client registered: (token URL, audit table)."""
    env = app_env(azurite, files.pki.trust_bundle.decode("ascii"), fresh_tables)
    stack = build_stack(monkeypatch, env, azurite.connection_string, containers=(CONTAINER,))
    stack.registry.put(Registration.for_certificate(files.pki.client.certificate,
                                                    container=CONTAINER, permissions="racwl"))
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": {}}))
    process = subprocess.Popen(
        [sys.executable, "-m", "certsas", "serve", "--port", "0", "--tls", "--tls-port", "0",
         "--tls-cert", str(files.path("server.pem")), "--tls-key", str(files.path("server.key")),
         "--app-dir", str(ROOT), "--settings", str(settings)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tmp_path,
        env={**os.environ, **env})
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        front = lines[2].split(" on ")[1].split(" ")[0]
        assert front.startswith("https://127.0.0.1:"), lines
        yield front.replace("127.0.0.1", "localhost") + "token", env["AUDIT_TABLE_NAME"]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_only_the_client_dependencies_run_a_job_longer_than_a_token_lives(
        client_venv: Path, serve_tls: tuple[str, str], files: DevFiles,
        azurite: Azurite) -> None:
    assert all(absent(client_venv, module) for module in SERVER_ONLY)
    url, audit_table = serve_tls
    cert, key = files.pair("client")
    # By path, so that the installed certsas is imported, not the checkout's.
    done = subprocess.run(
        [str(client_venv / "bin" / "python"), str(ROOT / "tests/support/client_scenario.py"),
         url, cert, key, files.ca, str(STEPS), str(STEP_SECONDS)],
        capture_output=True, text=True, timeout=300, cwd=client_venv)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert len(result["written"]) == STEPS

    tables = TableServiceClient.from_connection_string(azurite.connection_string)
    issued = sum(1 for _ in tables.get_table_client(audit_table).list_entities(
        select=["RowKey"]))
    assert expected_fetches(STEPS, STEP_SECONDS, TTL_MINUTES * 60) == issued == 2

    # The first token really expired while the job ran on; the one in hand at the end works.
    # (Azurite says 403 AuthorizationFailure of an expired SAS; Azure, AuthenticationFailed.)
    with pytest.raises(HttpResponseError) as expired:
        list(ContainerClient.from_container_url(result["first_url"]).list_blobs())
    assert expired.value.status_code == 403
    listed = ContainerClient.from_container_url(result["last_url"]).list_blobs()
    assert set(result["written"]) <= {blob.name for blob in listed}
