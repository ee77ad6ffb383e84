"""The signing epoch in a real table (Azurite): read by the app's lean client, and passed
by everything that reads the registry (list, the SHA-1 lookup, the expiry check)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient
from cryptography.hazmat.primitives import hashes

from certsas.config import StorageSettings
from certsas.epoch import EpochWatch, SigningEpoch, read_epoch_id, write_epoch
from certsas.registry import TableRegistry
from certsas.runtime import run_expiry_check
from certsas.storage import StorageClients
from tests.support.azurite import Azurite
from tests.support.cli import run
from tests.support.served import DevFiles


@pytest.fixture
def registry_table(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite: Azurite,
                   fresh_tables: tuple[str, str]) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STORAGE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("CERT_TABLE_NAME", fresh_tables[0])
    TableServiceClient.from_connection_string(azurite.connection_string).create_table(
        fresh_tables[0])
    return fresh_tables[0]


def clients(azurite: Azurite, table: str) -> StorageClients:
    return StorageClients(StorageSettings.from_env({
        "STORAGE_CONNECTION_STRING": azurite.connection_string, "CERT_TABLE_NAME": table}))


def test_the_app_reads_the_epoch_with_one_point_read(azurite: Azurite, registry_table: str
                                                     ) -> None:
    storage = clients(azurite, registry_table)
    lean = storage.hot_table(registry_table)
    assert read_epoch_id(lean) == ""  # never revoked
    epoch = SigningEpoch.new(datetime(2026, 12, 7, 1, 30, tzinfo=UTC))
    write_epoch(storage.registry_table(), epoch)
    assert read_epoch_id(lean) == epoch.epoch_id
    watch = EpochWatch(lean, 0)
    first = watch.generation()
    write_epoch(storage.registry_table(), SigningEpoch.new(datetime.now(UTC)))
    assert watch.generation() == first + 1


def test_registry_readers_pass_the_epoch_by(capsys: pytest.CaptureFixture[str],
                                            azurite: Azurite, registry_table: str,
                                            files: DevFiles) -> None:
    storage = clients(azurite, registry_table)
    write_epoch(storage.registry_table(), SigningEpoch.new(datetime.now(UTC)))
    assert run(capsys, "list")[1] == ["no registrations"]
    assert run(capsys, "register", str(files.path("client.pem")), "--container", "reports")[0] == 0
    code, out, _ = run(capsys, "list", "--json")
    listed = json.loads("\n".join(out))
    assert code == 0 and len(listed) == 1
    sha1 = files.pki.client.certificate.fingerprint(hashes.SHA1()).hex()  # noqa: S303
    assert run(capsys, "show", sha1)[0] == 0
    assert [type(item).__name__ for item in TableRegistry(storage.registry_table()).scan()] == [
        "Registration"]
    summary = run_expiry_check({"STORAGE_CONNECTION_STRING": azurite.connection_string,
                                "CERT_TABLE_NAME": registry_table,
                                "TRUSTED_CA_CERTS": files.pki.trust_bundle.decode("ascii")})
    assert summary is not None and summary.read == 1
