"""A misconfigured app still indexes its functions (SPEC §1, §3; issue 18, item 14).

Each case imports function_app in a fresh interpreter whose environment is the app's
settings, as the worker does, and reads the function metadata the v2 model produces
(``app.get_functions()``), then calls health and token as the host calls them. Then
Microsoft's own worker library (azure-functions-runtime, tests/support/worker.py) indexes
the app with some of the same settings.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, worker
from tests.support.pki import Pki

PROBE = ROOT / "tests" / "support" / "index_probe.py"
DEFAULT_SCHEDULE = "0 0 6 * * *"
REFERENCE = ("@Microsoft.KeyVault(SecretUri=https://kv-certsas.vault.azure.net/secrets/"
             "trust/0123456789abcdef)")
FUNCTIONS = {"token", "rotate", "health", "expiry_check"}


def probe(settings: dict[str, str]) -> dict[str, Any]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1", **settings}
    done = subprocess.run([sys.executable, str(PROBE), str(ROOT)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    document: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return document


def good(pki: Pki) -> dict[str, str]:
    return {"TRUSTED_CA_CERTS": pki.trust_bundle,
            "STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}


def without(settings: dict[str, str], *names: str) -> dict[str, str]:
    return {key: value for key, value in settings.items() if key not in names}


def timer_schedule(document: dict[str, Any]) -> str:
    (binding,) = document["functions"]["expiry_check"]
    assert binding["type"] == "timerTrigger"
    schedule: str = binding["schedule"]
    return schedule


@pytest.fixture(scope="module")
def healthy(pki: Pki) -> dict[str, Any]:
    return probe(good(pki))


def test_a_usable_app_indexes_four_functions_and_is_healthy(healthy: dict[str, Any]) -> None:
    assert set(healthy["functions"]) == FUNCTIONS
    assert timer_schedule(healthy) == DEFAULT_SCHEDULE
    assert healthy["health"] == {"status": 200, "body": {"status": "ok"}}
    # The broker is built and reads the header: a bad one is the caller's fault.
    assert healthy["token"]["body"]["error"] == "client_certificate_malformed"
    assert healthy["rotate"]["body"]["error"] == "client_certificate_malformed"
    ((line,),) = [healthy["startup"]]
    assert (line["level"], line["fields"]["status"]) == ("INFO", "ok")


# (what the environment lacks or holds wrong, the settings named, the timer's schedule)
CASES: list[tuple[str, Any, list[str], str]] = [
    ("nothing set (a first azd up)", lambda ok: {}, ["TRUSTED_CA_CERTS", "STORAGE_ACCOUNT_NAME"],
     DEFAULT_SCHEDULE),
    ("TRUSTED_CA_CERTS missing", lambda ok: without(ok, "TRUSTED_CA_CERTS"),
     ["TRUSTED_CA_CERTS"], DEFAULT_SCHEDULE),
    ("no storage setting", lambda ok: without(ok, "STORAGE_CONNECTION_STRING"),
     ["STORAGE_ACCOUNT_NAME"], DEFAULT_SCHEDULE),
    ("trust anchors an unresolved Key Vault reference",
     lambda ok: {**ok, "TRUSTED_CA_CERTS": REFERENCE}, ["TRUSTED_CA_CERTS"], DEFAULT_SCHEDULE),
    ("connection string an unresolved Key Vault reference",
     lambda ok: {**ok, "STORAGE_CONNECTION_STRING": REFERENCE}, ["STORAGE_CONNECTION_STRING"],
     DEFAULT_SCHEDULE),
    ("schedule not NCRONTAB", lambda ok: {**ok, "EXPIRY_CHECK_SCHEDULE": "daily at six"},
     ["EXPIRY_CHECK_SCHEDULE"], DEFAULT_SCHEDULE),
    ("schedule an unresolved Key Vault reference",
     lambda ok: {**ok, "EXPIRY_CHECK_SCHEDULE": REFERENCE}, ["EXPIRY_CHECK_SCHEDULE"],
     DEFAULT_SCHEDULE),
    ("anchors missing, schedule set", lambda ok: {**without(ok, "TRUSTED_CA_CERTS"),
                                                  "EXPIRY_CHECK_SCHEDULE": "0 30 5 * * 1-5"},
     ["TRUSTED_CA_CERTS"], "0 30 5 * * 1-5"),
    ("three wrong at once", lambda ok: {**ok, "OCSP_MODE": "maybe", "SAS_MAX_TTL_MINUTES": "sixty",
                                        "CERT_TABLE_NAME": "bad-name"},
     ["CERT_TABLE_NAME", "OCSP_MODE", "SAS_MAX_TTL_MINUTES"], DEFAULT_SCHEDULE),
]


@pytest.mark.parametrize(("case", "settings", "named", "schedule"), CASES,
                         ids=[case[0] for case in CASES])
def test_a_misconfigured_app_still_indexes_and_says_what_to_fix(
        pki: Pki, healthy: dict[str, Any], case: str, settings: Any, named: list[str],
        schedule: str) -> None:
    env = settings(good(pki))
    document = probe(env)
    # The same functions, bindings and all, as the usable app's; the timer keeps a
    # valid schedule.
    assert set(document["functions"]) == FUNCTIONS
    for name in ("token", "rotate", "health"):
        assert document["functions"][name] == healthy["functions"][name]
    assert timer_schedule(document) == schedule
    assert document["health"] == {"status": 503,
                                  "body": {"status": "misconfigured", "settings": named}}
    for route in ("token", "rotate"):
        answer = document[route]
        assert (answer["status"], answer["body"]["error"]) == (503, "configuration_error")
        assert all(name in answer["body"]["message"] for name in named)
    # Logged once at start-up: every setting at fault and what is wrong with it.
    ((line,),) = [document["startup"]]
    assert line["level"] == "ERROR"
    assert line["fields"]["settings"] == named
    assert line["fields"]["expiry_check_schedule"] == schedule
    assert [p["setting"] for p in line["fields"]["problems"]] == named
    if REFERENCE in env.values():
        assert "unresolved Key Vault reference" in json.dumps(line)
    # Never the value of a setting at fault, nor the trust anchors.
    text = json.dumps(document)
    for name in [*named, "TRUSTED_CA_CERTS"]:
        if env.get(name):
            assert env[name] not in text, case


EXAMPLE = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
# Without these the app has no trust anchors or no storage; every other setting has a default.
REQUIRED = {"TRUSTED_CA_CERTS": "TRUSTED_CA_CERTS",
            "STORAGE_CONNECTION_STRING": "STORAGE_ACCOUNT_NAME"}


@pytest.mark.slow
@pytest.mark.parametrize("missing", sorted(EXAMPLE))
def test_each_setting_missing_from_a_complete_configuration(
        healthy: dict[str, Any], missing: str) -> None:
    """Every setting of local.settings.json.example left out in turn: the same four
    functions with the same bindings; health names the setting only when it is required."""
    document = probe(without(EXAMPLE, missing))
    assert document["functions"] == healthy["functions"]
    if missing in REQUIRED:
        assert document["health"] == {"status": 503, "body": {
            "status": "misconfigured", "settings": [REQUIRED[missing]]}}
        assert document["token"]["body"]["error"] == "configuration_error"
    else:
        assert document["health"] == healthy["health"]
        assert document["token"]["body"]["error"] == "client_certificate_malformed"


# --- the same, indexed by Microsoft's worker (azure-functions-runtime, Python 3.13) -------

WORKER_CASES = [CASES[0], CASES[1], CASES[3], CASES[6]]


def worker_functions(document: dict[str, Any]) -> dict[str, Any]:
    assert document["init_status"] == 1, document["init_exception"]  # StatusResult.Success
    functions: dict[str, Any] = document["functions"]
    return functions


@pytest.mark.slow
@pytest.mark.parametrize(("case", "settings", "named", "schedule"),
                         [("usable", lambda ok: ok, [], DEFAULT_SCHEDULE), *WORKER_CASES],
                         ids=["usable", *[case[0] for case in WORKER_CASES]])
def test_microsofts_worker_indexes_every_function_whatever_the_settings(
        pki: Pki, healthy: dict[str, Any], case: str, settings: Any, named: list[str],
        schedule: str) -> None:
    document, stderr = worker.index(ROOT, settings(good(pki)))
    functions = worker_functions(document)
    assert set(functions) == FUNCTIONS
    # The metadata the worker hands the host is what the v2 model declares (test above).
    for name in ("token", "rotate", "health"):
        assert functions[name]["raw_bindings"] == healthy["functions"][name]
    (timer,) = functions["expiry_check"]["raw_bindings"]
    assert (timer["type"], timer["schedule"]) == ("timerTrigger", schedule)
    assert all(f["properties"] == {"worker_indexed": "True"} for f in functions.values())
    # The start-up line, once, says what is wrong (stderr: the worker's logging is not set up).
    assert stderr.count("certsas startup ") == (1 if named else 0)
    for name in named:
        assert name in stderr


@pytest.mark.slow
def test_the_worker_harness_fails_an_app_that_raises_at_import(tmp_path: Path) -> None:
    """An app that checks its settings by raising at import, as certsas did: the worker
    reports the failure and indexes nothing."""
    (tmp_path / "function_app.py").write_text(
        "import os\nimport azure.functions as func\n"
        "os.environ['TRUSTED_CA_CERTS']  # KeyError when unset\n"
        "app = func.FunctionApp()\n\n"
        "@app.route(route='health')\ndef health(req: func.HttpRequest) -> func.HttpResponse:\n"
        "    return func.HttpResponse('ok')\n")
    document, _ = worker.index(tmp_path, {})
    assert document["init_status"] == 0  # StatusResult.Failure
    assert "KeyError" in json.dumps(document["init_exception"])
    assert document["functions"] == {}
