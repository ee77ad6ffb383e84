"""The expiry check's timer function, called as the host calls it, against Azurite (SPEC §5a)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from certsas.devtools.pki import CertificateAuthority
from certsas.devtools.routes import app_functions, user_function
from certsas.thumbprints import sha256_thumbprint
from tests.support import ROOT
from tests.support.azurite import Azurite, free_port
from tests.support.pki import Pki
from tests.support.stack import Stack, app_env, build_stack


@dataclass(frozen=True)
class Timer:
    """What the host passes: a ``func.TimerRequest``; the check reads nothing from it."""

    past_due: bool = False


def run_timer() -> Any:
    import function_app

    return user_function(function_app.app, "expiry_check")(Timer())


def lines(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    prefix = f"certsas {event} "
    return [json.loads(r.getMessage()[len(prefix):]) for r in caplog.records
            if r.name == "certsas.expiry" and r.getMessage().startswith(prefix)]


def in_days(days: int) -> datetime:
    # An hour past the whole day, so the check's own later "now" still sees ``days``.
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=days, hours=1)


@pytest.fixture
def short_anchor() -> CertificateAuthority:
    """A trust anchor that expires in 20 days."""
    return CertificateAuthority.root("certsas short-lived root",
                                     not_after=in_days(20))


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki,
          fresh_tables: tuple[str, str], short_anchor: CertificateAuthority) -> Stack:
    bundle = pki.trust_bundle + short_anchor.issued.pem.decode("ascii")
    return build_stack(monkeypatch, app_env(azurite, bundle, fresh_tables,
                                            EXPIRY_WARNING_DAYS="30"),
                       azurite.connection_string)


def test_the_timer_warns_of_what_expires_and_changes_nothing(
        caplog: pytest.LogCaptureFixture, stack: Stack, pki: Pki,
        short_anchor: CertificateAuthority) -> None:
    caplog.set_level("INFO", logger="certsas.expiry")
    soon = stack.register(pki.issuing.issue("in-10-days", not_after=in_days(10)),
                          description="billing exporter")
    stack.register(pki.issuing.issue("in-100-days", not_after=in_days(100)))
    gone = stack.register(pki.issuing.issue("expired-yesterday", not_after=in_days(-1),
                                                   not_before=in_days(-300)))
    disabled = stack.register(pki.issuing.issue("disabled-in-5", not_after=in_days(5)))
    stack.registry.put(replace(disabled, enabled=False))
    # Rotated (SPEC §4a): its successor is registered, so it is not expiring.
    rotated = stack.register(pki.issuing.issue("rotated-in-7", not_after=in_days(7)))
    successor = stack.register(pki.issuing.issue("rotated-in-7", not_after=in_days(400)))
    stack.registry.put(replace(successor, rotated_from=rotated.thumbprint))
    registry = stack.tables.get_table_client(stack.env["CERT_TABLE_NAME"])
    registry.create_entity({"PartitionKey": "EE" * 32, "RowKey": "certificate",
                            "Subject": "CN=half-written"})
    before = {e["PartitionKey"]: e.metadata["etag"] for e in registry.list_entities()}

    assert run_timer() is None

    warned = lines(caplog, "expiry")
    assert [(w["kind"], w["thumbprint"], w["days_left"]) for w in warned] == [
        ("registration", gone.thumbprint, -1),
        ("registration", rotated.thumbprint, 7),
        ("registration", soon.thumbprint, 10),
        ("anchor", _thumbprint(short_anchor), 20),
    ]
    assert (warned[1]["status"], warned[1]["successor"]) == (
        f"expiring, successor registered: {successor.thumbprint}", successor.thumbprint)
    del warned[1]
    assert warned[1] == {"kind": "registration", "thumbprint": soon.thumbprint,
                         "subject": soon.subject, "description": "billing exporter",
                         "not_after": soon.not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "days_left": 10, "status": "expiring", "successor": None}
    assert lines(caplog, "expiry-unreadable") == [{"thumbprint": "EE" * 32,
                                                   "reason": "KeyError"}]
    assert lines(caplog, "expiry-summary") == [
        {"read": 7, "unreadable": 1, "expiring": 2, "expired": 1, "successor_registered": 1}]
    assert lines(caplog, "expiry-error") == []
    after = {e["PartitionKey"]: e.metadata["etag"] for e in registry.list_entities()}
    assert after == before


def test_storage_down_is_an_error_line_not_an_exception(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, azurite: Azurite,
        pki: Pki, fresh_tables: tuple[str, str]) -> None:
    caplog.set_level("INFO", logger="certsas.expiry")
    closed = azurite.connection_string.replace(f":{azurite.table_port}/",
                                               f":{free_port()}/")
    for key, value in app_env(azurite, pki.trust_bundle, fresh_tables,
                              STORAGE_CONNECTION_STRING=closed,
                              STORAGE_TIMEOUT_SECONDS="2").items():
        monkeypatch.setenv(key, value)

    assert run_timer() is None

    assert lines(caplog, "expiry-error") == [
        {"error": "ServiceRequestError: the registry table could not be read"}]
    assert lines(caplog, "expiry-summary") == [] and lines(caplog, "expiry") == []
    assert "AccountKey" not in caplog.text


def test_a_missing_registry_table_is_an_error_line(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, azurite: Azurite,
        pki: Pki) -> None:
    for key, value in app_env(azurite, pki.trust_bundle, ("NoSuchCerts", "NoSuchAudit")).items():
        monkeypatch.setenv(key, value)
    run_timer()
    assert lines(caplog, "expiry-error") == [
        {"error": "ResourceNotFoundError: the registry table could not be read"}]


def test_the_timer_is_declared_on_the_checked_schedule(pki: Pki) -> None:
    """As declared here, and in a fresh interpreter that imports function_app as the worker
    does, with the setting set."""
    import function_app

    declared = next(f for f in app_functions(function_app.app)
                    if f.get_function_name() == "expiry_check")
    binding = declared.get_bindings_dict()["bindings"][0]
    assert binding["type"] == "timerTrigger" and binding["name"] == "timer"
    assert binding["runOnStartup"] is False
    assert binding["schedule"] == function_app.startup.expiry_check_schedule

    env = {**os.environ, "TRUSTED_CA_CERTS": pki.trust_bundle,
           "STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
           "EXPIRY_CHECK_SCHEDULE": "0 30 5 * * 1-5"}
    probe = ("import function_app, json\n"
             "f = [f for f in function_app.app.get_functions()"
             " if f.get_function_name() == 'expiry_check'][0]\n"
             "print(json.dumps(f.get_bindings_dict()['bindings'][0]['schedule']))\n")
    out = subprocess.run([sys.executable, "-c", probe], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=60).stdout
    assert json.loads(out.strip().splitlines()[-1]) == "0 30 5 * * 1-5"


def _thumbprint(ca: CertificateAuthority) -> str:
    return sha256_thumbprint(ca.issued.der)
