"""Assembling the broker: the right signer and clients for each storage setting, built once."""

from __future__ import annotations

import json
import logging
import platform
from datetime import UTC, datetime

import pytest

from certsas import runtime
from certsas.config import Settings
from certsas.crl.checker import CrlChecker
from certsas.epoch import SigningEpoch, write_epoch
from certsas.errors import ConfigurationErrors
from certsas.ocsp.checker import OcspChecker
from certsas.revocation import NotChecked, RevocationPolicy
from certsas.sas import AccountKeySigner, UserDelegationSigner
from certsas.scope import Grant
from certsas.storage import StorageClients
from tests.support.delegation import CountingKeySource, signed_by
from tests.support.pki import Pki
from tests.support.signer_seams import MemoryTable, StandInKeyClients


def test_connection_string_means_account_key_signing(pki: Pki) -> None:
    settings = Settings.from_env({"TRUSTED_CA_CERTS": pki.trust_bundle,
                                  "STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
                                  "OCSP_MODE": "off"})
    broker = runtime.build_broker(settings)
    assert isinstance(broker.signer, AccountKeySigner)
    assert isinstance(broker.revocation, NotChecked)


def test_managed_identity_means_user_delegation_signing(pki: Pki) -> None:
    # Nothing here calls Azure: credentials and clients are built, not used.
    settings = Settings.from_env({"TRUSTED_CA_CERTS": pki.trust_bundle,
                                  "STORAGE_ACCOUNT_NAME": "certsasdata",
                                  "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001"})
    broker = runtime.build_broker(settings)
    assert isinstance(broker.signer, UserDelegationSigner)
    assert isinstance(broker.revocation, RevocationPolicy)
    # SPEC §3's default order: OCSP first, then the CRL.
    assert [type(source) for source in broker.revocation.sources] == [OcspChecker, CrlChecker]
    clients = StorageClients(settings.storage)
    assert clients.blob_service().url.startswith("https://certsasdata.blob.core.windows.net")
    assert clients.table("ClientCertificates").url.startswith(
        "https://certsasdata.table.core.windows.net")
    assert clients.table_service() is clients.table_service()


def test_the_runtime_signer_fetches_a_new_key_once_the_signing_epoch_changes(pki: Pki) -> None:
    """SPEC §2b as the runtime wires it: the managed-identity signer watches the epoch row
    in CERT_TABLE_NAME (read on every call here: REGISTRY_CACHE_SECONDS=0) and, after it
    changes, signs only with a newly fetched key. Only the key source is a stand-in."""
    settings = Settings.from_env({"TRUSTED_CA_CERTS": pki.trust_bundle,
                                  "STORAGE_ACCOUNT_NAME": "certsasdata",
                                  "CERT_TABLE_NAME": "Registrations",
                                  "REGISTRY_CACHE_SECONDS": "0"})
    table, keys = MemoryTable(), CountingKeySource()
    clients = StandInKeyClients(lambda _: table, keys)
    signer = runtime.build_signer(settings, clients)
    assert clients.tables_asked == ["Registrations"]
    grant = Grant("reports", "in/a.csv", "r", 15)

    def sign() -> str:
        return signer.sign(grant, datetime.now(UTC), request_id="r-1").url

    before = [sign() for _ in range(3)]
    assert keys.fetches == 1 and table.reads == 3  # no epoch change: the one key is kept
    write_epoch(table, SigningEpoch.new(datetime.now(UTC)))
    after = sign()
    assert keys.fetches == 2
    assert signed_by(after, keys.keys[1]) and not signed_by(after, keys.keys[0])
    assert all(signed_by(url, keys.keys[0]) for url in before)
    sign()
    assert keys.fetches == 2  # the epoch seen stays seen


def test_process_broker_is_built_once_from_the_environment(
        monkeypatch: pytest.MonkeyPatch, pki: Pki) -> None:
    monkeypatch.setenv("TRUSTED_CA_CERTS", pki.trust_bundle)
    monkeypatch.setenv("STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true")
    runtime.reset_broker()
    try:
        assert runtime.get_broker() is runtime.get_broker()
    finally:
        runtime.reset_broker()


# --- a misconfigured app still starts (issue 18, item 14) -------------------------------

def startup_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, dict[str, object]]]:
    prefix = "certsas startup "
    return [(r.levelno, json.loads(r.getMessage()[len(prefix):])) for r in caplog.records
            if r.name == "certsas.runtime" and r.getMessage().startswith(prefix)]


def test_start_logs_every_problem_once_and_the_broker_getter_raises_them(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    reference = "@Microsoft.KeyVault(SecretUri=https://kv-y.vault.azure.net/secrets/t/9)"
    for name in ("TRUSTED_CA_CERTS", "STORAGE_CONNECTION_STRING", "STORAGE_ACCOUNT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STORAGE_ACCOUNT_NAME", reference)
    monkeypatch.setenv("EXPIRY_CHECK_SCHEDULE", "every day")
    runtime.reset_broker()
    try:
        startup = runtime.start()
        assert startup.misconfigured == ("TRUSTED_CA_CERTS", "STORAGE_ACCOUNT_NAME",
                                         "EXPIRY_CHECK_SCHEDULE")
        # The timer still gets a valid schedule: SPEC §3's default.
        assert startup.expiry_check_schedule == "0 0 6 * * *"
        for _ in range(3):
            with pytest.raises(ConfigurationErrors) as caught:
                runtime.get_broker()
            assert caught.value.settings == startup.misconfigured
        assert runtime.start() is startup
    finally:
        runtime.reset_broker()
    ((level, fields),) = startup_lines(caplog)  # once, however often asked
    assert level == logging.ERROR
    assert fields["status"] == "misconfigured"
    assert fields["settings"] == list(startup.misconfigured)
    assert fields["expiry_check_schedule"] == "0 0 6 * * *"
    problems = {p["setting"]: p["problem"] for p in fields["problems"]}  # type: ignore[attr-defined]
    assert "unresolved Key Vault reference" in problems["STORAGE_ACCOUNT_NAME"]
    assert "kv-y" not in caplog.text and "every day" not in caplog.text


def test_a_usable_start_is_one_info_line(monkeypatch: pytest.MonkeyPatch, pki: Pki,
                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("TRUSTED_CA_CERTS", pki.trust_bundle)
    monkeypatch.setenv("STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true")
    monkeypatch.delenv("STORAGE_ACCOUNT_NAME", raising=False)
    monkeypatch.setenv("EXPIRY_CHECK_SCHEDULE", "0 30 5 * * 1-5")
    runtime.reset_broker()
    try:
        startup = runtime.start()
        assert startup.settings is not None and startup.misconfigured == ()
        assert runtime.settings() is startup.settings
    finally:
        runtime.reset_broker()
    ((level, fields),) = startup_lines(caplog)
    assert level == logging.INFO
    assert fields == {"status": "ok", "python": platform.python_version(),
                      "expiry_check_schedule": "0 30 5 * * 1-5"}


def test_the_process_builds_one_set_of_storage_clients_for_token_and_rotate(
        pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rotator reuses the broker's clients: one credential (one token fetch from Entra
    ID in Azure) and one set of connections per process, not two."""
    for name, value in {"TRUSTED_CA_CERTS": pki.trust_bundle,
                        "STORAGE_ACCOUNT_NAME": "certsasdata"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("STORAGE_CONNECTION_STRING", raising=False)
    built: list[StorageClients] = []

    class Counted(StorageClients):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            built.append(self)

    monkeypatch.setattr(runtime, "StorageClients", Counted)
    runtime.reset_broker()
    try:
        runtime.get_broker()
        runtime.get_rotator()
    finally:
        runtime.reset_broker()
    assert len(built) == 1
