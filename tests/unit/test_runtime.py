"""Assembling the broker: the right signer and clients for each storage setting, built once."""

from __future__ import annotations

import pytest

from certsas import runtime
from certsas.config import Settings
from certsas.crl.checker import CrlChecker
from certsas.ocsp.checker import OcspChecker
from certsas.revocation import NotChecked, RevocationPolicy
from certsas.sas import AccountKeySigner, UserDelegationSigner
from certsas.storage import StorageClients
from tests.support.pki import Pki


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


def test_process_broker_is_built_once_from_the_environment(
        monkeypatch: pytest.MonkeyPatch, pki: Pki) -> None:
    monkeypatch.setenv("TRUSTED_CA_CERTS", pki.trust_bundle)
    monkeypatch.setenv("STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true")
    runtime.reset_broker()
    try:
        assert runtime.get_broker() is runtime.get_broker()
    finally:
        runtime.reset_broker()
