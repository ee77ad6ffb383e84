"""Settings: every problem fails at start-up with the setting's name."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from certsas.accounts import AccountKeyAccess, ManagedIdentityAccess, parse_connection_string
from certsas.config import RevocationMode, Settings
from certsas.errors import ConfigurationError, ConfigurationErrors
from certsas.runtime import read_startup
from tests.support import ROOT, certforge
from tests.support.pki import Pki

AZURITE = "UseDevelopmentStorage=true"


def env(pki: Pki, **extra: str) -> dict[str, str]:
    return {"TRUSTED_CA_CERTS": pki.trust_bundle, "STORAGE_CONNECTION_STRING": AZURITE, **extra}


def test_defaults(pki: Pki) -> None:
    settings = Settings.from_env(env(pki))
    assert len(settings.trust_anchors) == 2
    assert isinstance(settings.storage.access, AccountKeyAccess)
    assert (settings.storage.cert_table, settings.storage.audit_table) == (
        "ClientCertificates", "TokenAudit")
    assert settings.client_cert_header == "X-ARR-ClientCert"
    assert settings.revocation.mode is RevocationMode.REQUIRE
    assert (settings.revocation.ocsp_timeout_seconds, settings.sas_default_ttl_minutes,
            settings.sas_max_ttl_minutes, settings.registry_cache_seconds) == (3.0, 15, 60, 30)


def test_managed_identity(pki: Pki) -> None:
    settings = Settings.from_env({"TRUSTED_CA_CERTS": pki.trust_bundle,
                                  "STORAGE_ACCOUNT_NAME": "certsasdata", "AZURE_CLIENT_ID": "abc"})
    assert settings.storage.access == ManagedIdentityAccess(
        "certsasdata", "https://certsasdata.blob.core.windows.net",
        "https://certsasdata.table.core.windows.net", "abc")


@pytest.mark.parametrize(("values", "setting"), [
    ({"TRUSTED_CA_CERTS": ""}, "TRUSTED_CA_CERTS"),
    ({"TRUSTED_CA_CERTS": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----"},
     "TRUSTED_CA_CERTS"),
    ({"TRUSTED_CA_CERTS": "hello"}, "TRUSTED_CA_CERTS"),
    ({"STORAGE_CONNECTION_STRING": ""}, "STORAGE_ACCOUNT_NAME"),
    ({"STORAGE_ACCOUNT_NAME": "both"}, "STORAGE_CONNECTION_STRING"),
    ({"STORAGE_CONNECTION_STRING": "AccountName=x"}, "STORAGE_CONNECTION_STRING"),
    ({"STORAGE_CONNECTION_STRING": "", "STORAGE_ACCOUNT_NAME": "Not_Valid"}, "STORAGE_ACCOUNT_NAME"),
    ({"OCSP_MODE": "maybe"}, "OCSP_MODE"),
    ({"OCSP_TIMEOUT_SECONDS": "soon"}, "OCSP_TIMEOUT_SECONDS"),
    ({"OCSP_TIMEOUT_SECONDS": "0"}, "OCSP_TIMEOUT_SECONDS"),
    ({"OCSP_RESPONDER_URL": "ftp://x"}, "OCSP_RESPONDER_URL"),
    ({"SAS_DEFAULT_TTL_MINUTES": "0"}, "SAS_DEFAULT_TTL_MINUTES"),
    ({"SAS_DEFAULT_TTL_MINUTES": "90"}, "SAS_DEFAULT_TTL_MINUTES"),
    ({"SAS_MAX_TTL_MINUTES": "x"}, "SAS_MAX_TTL_MINUTES"),
    ({"SAS_MAX_TTL_MINUTES": "1441"}, "SAS_MAX_TTL_MINUTES"),
    ({"REGISTRY_CACHE_SECONDS": "-1"}, "REGISTRY_CACHE_SECONDS"),
    ({"CERT_TABLE_NAME": "bad-name"}, "CERT_TABLE_NAME"),
    ({"CLIENT_CERT_HEADER": "Bad Header"}, "CLIENT_CERT_HEADER"),
])
def test_bad_settings_name_the_setting(pki: Pki, values: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(env(pki, **values))
    assert caught.value.setting == setting
    assert str(caught.value).startswith(setting)


def test_leaf_is_not_a_trust_anchor(pki: Pki) -> None:
    with pytest.raises(ConfigurationError, match="is not a CA"):
        Settings.from_env(env(pki, TRUSTED_CA_CERTS=pki.client.pem.decode()))


def test_escaped_newlines_in_pem_are_accepted(pki: Pki) -> None:
    one_line = pki.trust_bundle.replace("\n", "\\n")
    assert len(Settings.from_env(env(pki, TRUSTED_CA_CERTS=one_line)).trust_anchors) == 2


def test_a_malformed_connection_string_is_not_echoed(pki: Pki) -> None:
    secret = "c2VjcmV0LWtleS1tYXRlcmlhbA"
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(env(pki, STORAGE_CONNECTION_STRING=f"AccountName=a;AccountKey{secret}"))
    assert "segment 2" in str(caught.value)
    assert secret not in str(caught.value)


def test_connection_string_forms() -> None:
    azurite = parse_connection_string(AZURITE)
    assert azurite.blob_endpoint == "http://127.0.0.1:10000/devstoreaccount1"
    cloud = parse_connection_string(
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net")
    assert (cloud.blob_endpoint, cloud.table_endpoint) == (
        "https://acct.blob.core.windows.net", "https://acct.table.core.windows.net")
    assert "a2V5" not in repr(cloud)


def test_local_settings_example_is_complete_and_starts() -> None:
    document = json.loads(Path(ROOT / "local.settings.json.example").read_text())
    values = document["Values"]
    # Every setting of SPEC §3 (REVOCATION_MODE by its current name, not OCSP_MODE).
    spec_settings = {"TRUSTED_CA_CERTS", "STORAGE_CONNECTION_STRING", "STORAGE_ACCOUNT_NAME",
                     "CERT_TABLE_NAME", "AUDIT_TABLE_NAME", "CLIENT_CERT_HEADER",
                     "REVOCATION_MODE", "REVOCATION_SOURCES", "OCSP_RESPONDER_URL",
                     "OCSP_TIMEOUT_SECONDS", "CRL_URL", "CRL_TIMEOUT_SECONDS", "CRL_MAX_BYTES",
                     "REVOCATION_BLOCKED_NETWORKS", "EXPIRY_WARNING_DAYS",
                     "EXPIRY_CHECK_SCHEDULE", "AUDIT_PARTITIONS", "SAS_DEFAULT_TTL_MINUTES",
                     "SAS_MAX_TTL_MINUTES", "REGISTRY_CACHE_SECONDS"}
    assert spec_settings <= set(values)
    assert "OCSP_MODE" not in values
    settings = Settings.from_env(values)
    assert isinstance(settings.storage.access, AccountKeyAccess)


# --- values are never repeated (issue 11, item 3) -------------------------------------

PASTED = ("DefaultEndpointsProtocol=https;AccountName=leaky;"
          "AccountKey=c2VjcmV0LWtleS1tYXRlcmlhbC1kby1ub3QtbG9n;EndpointSuffix=core.windows.net")


@pytest.mark.parametrize("setting", [
    "STORAGE_ACCOUNT_NAME", "SAS_MAX_TTL_MINUTES", "OCSP_MODE", "REVOCATION_MODE",
    "CERT_TABLE_NAME", "AUDIT_TABLE_NAME", "CLIENT_CERT_HEADER", "OCSP_TIMEOUT_SECONDS",
    "OCSP_RESPONDER_URL", "REVOCATION_SOURCES", "REVOCATION_BLOCKED_NETWORKS",
    "EXPIRY_CHECK_SCHEDULE", "TRUSTED_CA_CERTS",
])
def test_a_connection_string_pasted_into_a_setting_is_never_repeated(
        pki: Pki, setting: str) -> None:
    values = {setting: PASTED}
    if setting == "STORAGE_ACCOUNT_NAME":
        values["STORAGE_CONNECTION_STRING"] = ""
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(env(pki, **values))
    message = str(caught.value)
    assert caught.value.setting == setting, message
    for fragment in ("c2VjcmV0", "AccountKey=", "leaky", "DefaultEndpointsProtocol"):
        assert fragment not in message


@pytest.mark.parametrize("setting", [
    "STORAGE_CONNECTION_STRING", "STORAGE_ACCOUNT_NAME", "TRUSTED_CA_CERTS", "OCSP_MODE",
    "CERT_TABLE_NAME", "CLIENT_CERT_HEADER", "SAS_MAX_TTL_MINUTES",
])
def test_an_unresolved_key_vault_reference_is_named_as_such(pki: Pki, setting: str) -> None:
    reference = ("@Microsoft.KeyVault(SecretUri=https://kv-certsas.vault.azure.net/secrets/"
                 "storage/0123456789abcdef)")
    values = {setting: reference}
    if setting == "STORAGE_ACCOUNT_NAME":
        values["STORAGE_CONNECTION_STRING"] = ""
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(env(pki, **values))
    assert caught.value.setting == setting
    assert "unresolved Key Vault reference" in str(caught.value)
    assert "kv-certsas" not in str(caught.value) and "0123456789abcdef" not in str(caught.value)


def test_a_bom_before_the_trust_anchors_is_accepted(pki: Pki) -> None:
    settings = Settings.from_env(env(pki, TRUSTED_CA_CERTS="\ufeff" + pki.trust_bundle))
    assert len(settings.trust_anchors) == 2


def test_a_private_key_among_the_trust_anchors_fails_without_echoing_it(pki: Pki) -> None:
    key = pki.client.key_pem.decode()
    for bundle in (pki.trust_bundle + key, key + pki.trust_bundle):
        with pytest.raises(ConfigurationError, match="private key") as caught:
            Settings.from_env(env(pki, TRUSTED_CA_CERTS=bundle))
        assert caught.value.setting == "TRUSTED_CA_CERTS"
        body = "".join(key.splitlines()[1:-1])
        assert body[:40] not in str(caught.value)


# --- connection strings the SDK would choke on fail here, named (issue 11, item 8) ----

KEY = "a2V5a2V5a2V5"


@pytest.mark.parametrize(("value", "problem"), [
    (f"AccountName=a;AccountKey={KEY};BlobEndpoint=notaurl", "BlobEndpoint is not"),
    (f"AccountName=a;AccountKey={KEY};TableEndpoint=http://[::1", "TableEndpoint is not"),
    (f"AccountName=a;AccountKey={KEY};TableEndpoint=http://[zz]/a", "TableEndpoint is not"),
    (f"AccountName=a;AccountKey={KEY};TableEndpoint=http://h:99999/a", "TableEndpoint is not"),
    (f"AccountName=a;AccountKey={KEY};TableEndpoint=http://h:abc/a", "TableEndpoint is not"),
    (f"AccountName=a;AccountKey={KEY};TableEndpoint=http://u:p@h/a", "TableEndpoint is not"),
    (f"AccountName=a;AccountKey={KEY};TableEndpoint=http://e%78ample/a", "TableEndpoint is not"),
    (f"AccountName=a;AccountKey={KEY};EndpointSuffix=", "EndpointSuffix"),
    ("AccountName=a;AccountKey=b", "AccountKey is not base64"),
    ("AccountName=a;AccountKey=!!!!notbase64", "AccountKey is not base64"),
    (f"AccountName=a b;AccountKey={KEY}", "AccountName"),
    ("UseDevelopmentStorage=true;AccountName=x", "takes no other fields"),
])
def test_malformed_connection_strings_are_named_not_echoed(value: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_connection_string(value)
    assert caught.value.setting == "STORAGE_CONNECTION_STRING"
    assert problem in str(caught.value)
    assert KEY not in str(caught.value) and "notbase64" not in str(caught.value)


def test_the_sdk_gets_a_string_composed_of_checked_parts() -> None:
    access = parse_connection_string(
        f"AccountName=acct;AccountKey={KEY};SharedAccessSignature=sv=x;QueueEndpoint=odd")
    assert access.connection_string == (
        f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY};"
        "BlobEndpoint=https://acct.blob.core.windows.net;"
        "TableEndpoint=https://acct.table.core.windows.net")
    assert parse_connection_string(
        f"AccountName=a;AccountKey={KEY};TableEndpoint=http://[::1]:10002/a/").table_endpoint \
        == "http://[::1]:10002/a"


# --- every problem at once (issue 18, item 14) ----------------------------------------

def test_every_problem_is_named_in_one_reading(pki: Pki) -> None:
    reference = "@Microsoft.KeyVault(SecretUri=https://kv-x.vault.azure.net/secrets/s/0123)"
    with pytest.raises(ConfigurationErrors) as caught:
        Settings.from_env({
            "TRUSTED_CA_CERTS": "",
            "STORAGE_ACCOUNT_NAME": reference,
            "CERT_TABLE_NAME": "bad-name",
            "OCSP_TIMEOUT_SECONDS": "soon",
            "CRL_URL": "ftp://x",
            "SAS_MAX_TTL_MINUTES": "x",
            "EXPIRY_CHECK_SCHEDULE": "daily",
            "AUDIT_PARTITIONS": "0",
        })
    errors = caught.value
    assert errors.settings == (
        "TRUSTED_CA_CERTS", "STORAGE_ACCOUNT_NAME", "CERT_TABLE_NAME", "OCSP_TIMEOUT_SECONDS",
        "CRL_URL", "SAS_MAX_TTL_MINUTES", "EXPIRY_CHECK_SCHEDULE", "AUDIT_PARTITIONS")
    problems = {error.setting: error.problem for error in errors.errors}
    assert "unresolved Key Vault reference" in problems["STORAGE_ACCOUNT_NAME"]
    assert "is required" in problems["TRUSTED_CA_CERTS"]
    text = str(errors)
    for value in ("kv-x", "0123", "bad-name", "soon", "ftp://x", "daily"):
        assert value not in text
    # The first problem stays the error's own, as a single problem always was.
    assert (errors.setting, str(errors).split(";")[0]) == (
        "TRUSTED_CA_CERTS", str(errors.errors[0]))


def test_no_setting_at_all_names_both_required_ones() -> None:
    with pytest.raises(ConfigurationErrors) as caught:
        Settings.from_env({})
    assert caught.value.settings == ("TRUSTED_CA_CERTS", "STORAGE_ACCOUNT_NAME")


def test_a_problem_in_a_group_does_not_hide_the_next_one(pki: Pki) -> None:
    """Storage and revocation settings are read as groups; each member still counts."""
    with pytest.raises(ConfigurationErrors) as caught:
        Settings.from_env(env(pki, AUDIT_TABLE_NAME="no_", STORAGE_TIMEOUT_SECONDS="0",
                              REVOCATION_MODE="maybe", REVOCATION_SOURCES="ocsp,ocsp",
                              REVOCATION_BLOCKED_NETWORKS="nope"))
    assert caught.value.settings == ("AUDIT_TABLE_NAME", "STORAGE_TIMEOUT_SECONDS",
                                     "REVOCATION_MODE", "REVOCATION_SOURCES",
                                     "REVOCATION_BLOCKED_NETWORKS")


@pytest.mark.parametrize("forge", ["duplicate_extension", "invalid_version"])
def test_an_unreadable_trust_anchor_is_named_and_never_stops_the_start(
        pki: Pki, forge: str) -> None:
    """cryptography raises these outside ValueError; one escaping read_startup would stop
    function_app.py's import, and with it the indexing of every function (SPEC §3)."""
    der = getattr(certforge, forge)(pki.issuing)
    pem = ("-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der).decode()
           + "-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(env(pki, TRUSTED_CA_CERTS=pki.trust_bundle + pem))
    assert caught.value.setting == "TRUSTED_CA_CERTS"
    startup = read_startup(env(pki, TRUSTED_CA_CERTS=pem))
    assert startup.misconfigured == ("TRUSTED_CA_CERTS",)


@pytest.mark.parametrize("schedule", [
    "0 0 6 * * *", "0 */5 * * * *", "0 30 9 * Jan Mon", "0 0 9-17 * * 1-5", "0 0 7,18 * * *",
    "5/15 0 0 1 january sunday", "0 0 0 31 DEC-dec 6", "0 0 */2 * * *",
])
def test_a_schedule_the_timer_takes_is_kept(pki: Pki, schedule: str) -> None:
    assert Settings.from_env(env(pki, EXPIRY_CHECK_SCHEDULE=schedule)).expiry_check_schedule \
        == schedule


@pytest.mark.parametrize("schedule", [
    "0 0 25 * * *", "60 0 6 * * *", "0 0 6 0 * *", "0 0 6 * 13 *", "0 0 6 * * 7",
    "0 0 6 * Foo *", "0 0 6-2 * * *", "0 */0 * * * *", "0 0 6 * * ,", "0 0 6 * * ?",
    "%SCHEDULE% 0 6 * * *", "0 0 \uff16 * * *", "0 0 6 * *  *", "0 0 6 * * * *",
])
def test_a_schedule_the_timer_would_refuse_is_named_and_never_given_to_it(
        pki: Pki, schedule: str) -> None:
    """The host fails the timer function on a schedule NCRONTAB cannot parse (hour 25,
    a %NAME% it looks up in the app settings): caught here, the start-up line names
    EXPIRY_CHECK_SCHEDULE and the timer keeps SPEC §3's default."""
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(env(pki, EXPIRY_CHECK_SCHEDULE=schedule))
    assert caught.value.setting == "EXPIRY_CHECK_SCHEDULE"
    assert schedule not in str(caught.value)
    assert read_startup(env(pki, EXPIRY_CHECK_SCHEDULE=schedule)).expiry_check_schedule \
        == "0 0 6 * * *"
