"""docs/client.md's Python example runs as printed, against the served app and Azurite: the
only edits are the endpoint's address and, through REQUESTS_CA_BUNDLE, trust in the dev CA."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

from tests.support import ROOT
from tests.support.served import CONTAINER, Served

EXAMPLE_URL = "https://<app>.azurewebsites.net/api/token"


def python_example() -> str:
    text = (ROOT / "docs" / "client.md").read_text(encoding="utf-8")
    found = re.search(r"^```python\n(.*?)^```", text, re.S | re.M)
    assert found is not None and EXAMPLE_URL in found.group(1)
    return found.group(1)


def test_the_python_example_uploads_a_folder(served: Served, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    served.register(served.files.pki.client)
    client = served.files.pki.client
    (tmp_path / "client.pfx").write_bytes(pkcs12.serialize_key_and_certificates(
        b"client", client.key, client.certificate, None, BestAvailableEncryption(b"pfx-pw")))
    (tmp_path / "out" / "sub").mkdir(parents=True)
    (tmp_path / "out" / "a.txt").write_bytes(b"a")
    (tmp_path / "out" / "sub" / "b.txt").write_bytes(b"b")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CERTSAS_KEY_PASSWORD", "pfx-pw")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", served.files.ca)

    code = python_example().replace(EXAMPLE_URL, served.tls_token)
    exec(compile(code, "docs/client.md", "exec"), {"__name__": "docs_example"})  # noqa: S102

    container = BlobServiceClient.from_connection_string(
        served.env["STORAGE_CONNECTION_STRING"]).get_container_client(CONTAINER)
    assert container.download_blob("in/a.txt").readall() == b"a"
    assert container.download_blob("in/sub/b.txt").readall() == b"b"
