"""The command line's settings and checks that need no storage: precedence, thumbprints,
which tables ``register`` may create, and what it refuses to register."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from certsas.accounts import AccountKeyAccess, ManagedIdentityAccess
from certsas.cli.admin import tables_to_create
from certsas.cli.settings import file_values_to_use, layered, settings_env
from certsas.cli.vetting import objections
from certsas.config import StorageSettings
from certsas.devtools.pki import CertificateAuthority
from certsas.thumbprints import normalize_thumbprint

AZURITE = "UseDevelopmentStorage=true"
LOCAL_FILE = {"STORAGE_CONNECTION_STRING": AZURITE, "STORAGE_ACCOUNT_NAME": "",
              "AZURE_CLIENT_ID": "local-id", "CERT_TABLE_NAME": "LocalCerts",
              "OCSP_MODE": "off"}

# --- the environment wins, the account is one choice ------------------------------------


def test_an_account_name_in_the_environment_overrides_the_files_connection_string() -> None:
    env = layered({"STORAGE_ACCOUNT_NAME": "prodcerts"}, LOCAL_FILE)
    settings = StorageSettings.from_env(env)  # not "set exactly one of ..."
    assert isinstance(settings.access, ManagedIdentityAccess)
    assert settings.access.account_name == "prodcerts"
    assert settings.access.client_id is None  # the file's identity went with its account
    assert settings.cert_table == "LocalCerts"  # names no account: still fills in
    assert env["OCSP_MODE"] == "off"


def test_a_connection_string_in_the_environment_overrides_the_files_account_name() -> None:
    env = layered({"STORAGE_CONNECTION_STRING": AZURITE},
                  {"STORAGE_ACCOUNT_NAME": "prodcerts", "AZURE_CLIENT_ID": "x"})
    assert isinstance(StorageSettings.from_env(env).access, AccountKeyAccess)
    assert "STORAGE_ACCOUNT_NAME" not in env and "AZURE_CLIENT_ID" not in env


def test_without_a_storage_choice_in_the_environment_the_file_fills_in() -> None:
    assert layered({"OCSP_MODE": "require"}, LOCAL_FILE) == {**LOCAL_FILE, "OCSP_MODE": "require"}
    # An empty or blank variable chooses nothing (as the app reads it: unset).
    env = layered({"STORAGE_ACCOUNT_NAME": "  "}, LOCAL_FILE)
    assert env["STORAGE_CONNECTION_STRING"] == AZURITE


def test_both_in_the_environment_is_still_the_operators_contradiction() -> None:
    from certsas.errors import ConfigurationError

    env = layered({"STORAGE_ACCOUNT_NAME": "prodcerts", "STORAGE_CONNECTION_STRING": AZURITE}, {})
    with pytest.raises(ConfigurationError, match="set exactly one of"):
        StorageSettings.from_env(env)


def test_serve_copies_only_what_fills_in() -> None:
    used = file_values_to_use({"STORAGE_ACCOUNT_NAME": "prodcerts", "OCSP_MODE": "soft-fail"},
                              LOCAL_FILE)
    assert used == {"CERT_TABLE_NAME": "LocalCerts"}


def test_settings_env_reads_local_settings_json(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": LOCAL_FILE}))
    monkeypatch.setenv("STORAGE_ACCOUNT_NAME", "prodcerts")
    env = settings_env(path)
    assert env["STORAGE_ACCOUNT_NAME"] == "prodcerts"
    assert "STORAGE_CONNECTION_STRING" not in env
    assert env["CERT_TABLE_NAME"] == "LocalCerts"


# --- which tables register may create ---------------------------------------------------


def test_register_creates_tables_locally_and_none_in_azure() -> None:
    local = StorageSettings.from_env({"STORAGE_CONNECTION_STRING": AZURITE,
                                      "CERT_TABLE_NAME": "Certs", "AUDIT_TABLE_NAME": "Audit"})
    assert tables_to_create(local) == ("Certs", "Audit")
    azure = StorageSettings.from_env({"STORAGE_ACCOUNT_NAME": "prodcerts"})
    assert tables_to_create(azure) == ()


# --- thumbprints, as people paste them ---------------------------------------------------

SHA256 = "0A1B2C3D4E5F" * 5 + "ABCD"
SHA1 = "0A1B2C3D4E" * 4


@pytest.mark.parametrize("text", [
    SHA256, SHA256.lower(), ":".join(SHA256[i:i + 2] for i in range(0, 64, 2)),
    " ".join(SHA256[i:i + 2] for i in range(0, 64, 2)), f"  {SHA256.lower()}\n",
    "\u200e" + SHA256,  # what Windows' certificate dialog copies
    SHA256[:10].lower() + SHA256[10:],
])
def test_sha256_forms_people_paste(text: str) -> None:
    assert normalize_thumbprint(text) == SHA256


@pytest.mark.parametrize("text", [SHA1, SHA1.lower(), ":".join(SHA1[i:i + 2] for i in range(0, 40, 2)),
                                  "\t" + " ".join(SHA1[i:i + 2] for i in range(0, 40, 2))])
def test_sha1_forms_people_paste(text: str) -> None:
    assert normalize_thumbprint(text) == SHA1


@pytest.mark.parametrize("text", [
    "", SHA256[:-1], SHA256 + "0", SHA1[:-2], SHA256[:-1] + "G",
    "-".join(SHA1[i:i + 2] for i in range(0, 40, 2)),  # not a form SPEC allows
    "\ufb00" * 32,  # upper-cases to 64 "F"s: not ASCII, so not a thumbprint
    "\uff10" * 40,  # fullwidth zeros
])
def test_what_is_not_a_thumbprint(text: str) -> None:
    with pytest.raises(ValueError, match="not a SHA-256"):
        normalize_thumbprint(text)


# --- what register refuses without --force ---------------------------------------------

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    # CAs older than every leaf below, so only the leaf's own dates are in question.
    since = NOW - timedelta(days=400)
    root = CertificateAuthority.root("vetting root", not_before=since)
    return root.intermediate("vetting issuing CA", not_before=since)


def test_a_current_client_certificate_under_the_anchor_is_fit(ca: CertificateAuthority) -> None:
    client = ca.issue("ok", not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=9))
    assert objections(client.certificate, NOW, (ca.certificate,)) == []
    assert objections(client.certificate, NOW, ()) == []


def test_a_successor_not_yet_valid_is_fit(ca: CertificateAuthority) -> None:
    successor = ca.issue("next", not_before=NOW + timedelta(days=5),
                         not_after=NOW + timedelta(days=400))
    assert objections(successor.certificate, NOW, (ca.certificate,)) == []


def test_each_objection(ca: CertificateAuthority) -> None:
    expired = ca.issue("old", not_before=NOW - timedelta(days=30), not_after=NOW - timedelta(days=1))
    assert objections(expired.certificate, NOW, (ca.certificate,)) == [
        f"it expired at {(NOW - timedelta(days=1)).strftime('%Y-%m-%dT%H:%M:%SZ')}"]

    assert objections(ca.certificate, NOW, (ca.certificate,)) == [
        "it is a CA certificate, not a client certificate"]

    stranger = CertificateAuthority.root("stranger").issue("x", not_before=NOW - timedelta(days=1))
    [problem] = objections(stranger.certificate, NOW, (ca.certificate,))
    assert problem.startswith("it does not chain to TRUSTED_CA_CERTS: its issuer CN=stranger,"
                              "O=certsas dev is not in TRUSTED_CA_CERTS (which holds "
                              "CN=vetting issuing CA,O=certsas dev): it comes from another CA")
    assert objections(stranger.certificate, NOW, ()) == []  # no anchors: not judged

    server = ca.issue("srv", eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
                      not_before=NOW - timedelta(days=1))
    # Said once, although the chain validator refuses it for the same reason.
    assert objections(server.certificate, NOW, (ca.certificate,)) == [
        "the extended key usage does not include clientAuth (it lists serverAuth) (the app "
        "refuses it: certificate_not_trusted)"]
    no_eku = ca.issue("none", eku=None, not_before=NOW - timedelta(days=1))
    assert objections(no_eku.certificate, NOW, (ca.certificate,)) == [
        "the certificate has no extended key usage extension (clientAuth is required) (the "
        "app refuses it: certificate_not_trusted)"]
    # Both wrong: both said, each once.
    both = CertificateAuthority.root("stranger").issue("y", eku=None,
                                                        not_before=NOW - timedelta(days=1))
    assert [p.split(" (")[0] for p in objections(both.certificate, NOW, (ca.certificate,))] == [
        "the certificate has no extended key usage extension",
        "it does not chain to TRUSTED_CA_CERTS: its issuer CN=stranger,O=certsas dev is not in "
        "TRUSTED_CA_CERTS"]


def test_the_rule_is_in_the_help() -> None:
    from certsas.cli import build_parser

    text = " ".join(build_parser().format_help().split())
    assert ("Setting STORAGE_CONNECTION_STRING or STORAGE_ACCOUNT_NAME in the environment "
            "chooses the storage account") in text
