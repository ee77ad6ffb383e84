"""The HTTP layer: refusals and accidents become JSON with the right status, never a trace."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import azure.functions as func
import pytest

from certsas import http
from certsas.errors import ConfigurationError, ConfigurationErrors, ScopeNotAllowed
from tests.support.memory import DecisionLines


def request(headers: dict[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest(method="POST", url="http://localhost/api/token",
                            headers=headers or {}, body=b"")


class Raising:
    """A broker stand-in that fails the way it is told to."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def issue(self, *args: object) -> None:
        raise self.error


def answer(error: BaseException) -> tuple[int, dict[str, str], func.HttpResponse]:
    broker = Raising(error)
    response = http.token(request(), lambda: broker, "inv-1")  # type: ignore[arg-type,return-value]
    return response.status_code, json.loads(response.get_body()), response


def test_refusal_is_its_spec_code_and_generic_message() -> None:
    status, body, response = answer(ScopeNotAllowed("ttl 90 above cap 60 for thumbprint X"))
    assert (status, body["error"]) == (403, "scope_not_allowed")
    assert "thumbprint" not in body["message"]  # operator detail stays in the log
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Type"] == "application/json"


def test_an_unexpected_error_is_a_bare_500(caplog: pytest.LogCaptureFixture) -> None:
    status, body, _ = answer(KeyError("sig=secret-looking-detail"))
    assert (status, body["error"]) == (500, "internal_error")
    assert "secret" not in json.dumps(body)
    assert "KeyError" in caplog.text and "secret" not in caplog.text


def test_unusable_settings_are_a_503_naming_the_settings_never_a_value(
        caplog: pytest.LogCaptureFixture) -> None:
    errors = ConfigurationErrors([
        ConfigurationError("TRUSTED_CA_CERTS", "is required"),
        ConfigurationError("STORAGE_ACCOUNT_NAME", "is an unresolved Key Vault reference"),
        ConfigurationError("TRUSTED_CA_CERTS", "certificate 2 is not a CA"),
    ])
    status, body, response = answer(errors)
    assert (status, body["error"]) == (503, "configuration_error")
    assert "TRUSTED_CA_CERTS, STORAGE_ACCOUNT_NAME." in body["message"]
    assert "Key Vault" not in body["message"]  # what is wrong is for the operator's log
    assert response.headers["Cache-Control"] == "no-store"
    # One decision line, as for every request (SPEC §1).
    (decision,) = [r for r in caplog.records if r.getMessage().startswith("certsas decision ")]
    fields = json.loads(decision.getMessage().removeprefix("certsas decision "))
    assert (fields["outcome"], fields["error"], fields["request_id"]) == (
        "refused", "configuration_error", "inv-1")


def test_one_configuration_error_raised_late_is_a_503_too() -> None:
    status, body, _ = answer(ConfigurationError("CRL_URL", "must be an http:// or https:// URL"))
    assert (status, body["error"]) == (503, "configuration_error")
    assert "CRL_URL" in body["message"]


def test_any_endpoint_run_through_answer_gets_the_same_mapping() -> None:
    """What POST /api/rotate does: its own call, the same failures, the same answers."""
    info = http.request_info(request(), "inv-3")

    def unusable() -> func.HttpResponse:
        raise ConfigurationErrors([ConfigurationError("REVOCATION_MODE", "is not one of ...")])

    response = http.answer(info, unusable)
    assert response.status_code == 503
    assert json.loads(response.get_body())["error"] == "configuration_error"
    assert http.answer(info, lambda: http.json_response(201, {"a": 1})).status_code == 201


@pytest.mark.parametrize(("headers", "expected"), [
    ({}, None),
    ({"X-Forwarded-For": "203.0.113.5:4711"}, "203.0.113.5:4711"),
    ({"X-Forwarded-For": "10.0.0.1, 203.0.113.5:4711"}, "203.0.113.5:4711"),
    ({"X-Client-IP": "198.51.100.2"}, "198.51.100.2"),
])
def test_request_info_takes_the_nearest_proxys_address(headers: dict[str, str],
                                                      expected: str | None) -> None:
    info = http.request_info(request(headers), "inv-2")
    assert (info.request_id, info.client_address) == ("inv-2", expected)


def test_request_id_is_made_up_when_the_host_gives_none() -> None:
    assert len(http.request_info(request(), None).request_id) == 36


def test_health_calls_nothing() -> None:
    response = http.health()
    assert (response.status_code, json.loads(response.get_body())) == (200, {"status": "ok"})



def test_health_while_misconfigured_names_the_settings() -> None:
    response = http.health(("TRUSTED_CA_CERTS", "STORAGE_ACCOUNT_NAME"))
    assert (response.status_code, json.loads(response.get_body())) == (
        503, {"status": "misconfigured", "settings": ["TRUSTED_CA_CERTS", "STORAGE_ACCOUNT_NAME"]})


def rotate_request() -> func.HttpRequest:
    return func.HttpRequest(method="POST", url="http://localhost/api/rotate", headers={},
                            body=b"{}")


def failing_factory(error: Exception) -> Callable[[], Any]:
    def build() -> Any:
        raise error
    return build


@pytest.mark.parametrize(("error", "status", "outcome", "code"), [
    (ConfigurationErrors([ConfigurationError("TRUSTED_CA_CERTS", "is required")]), 503,
     "refused", "configuration_error"),
    (RuntimeError("sig=secret-looking-detail"), 500, "error", "internal_error"),
])
def test_a_call_that_never_reaches_its_broker_still_logs_one_decision_line_with_its_action(
        decisions: DecisionLines, error: Exception, status: int, outcome: str, code: str) -> None:
    """SPEC §1, §4a: every call, one decision line; /api/rotate's say action "rotate", so a
    rotation refused for the settings, or failing to build, is counted as a rotation."""
    rotate = http.rotate(rotate_request(), failing_factory(error), "inv-9")
    token = http.token(request(), failing_factory(error), "inv-9")
    assert (rotate.status_code, token.status_code) == (status, status)
    assert [(d["outcome"], d["error"], d.get("action"), d["request_id"])
            for d in decisions.decisions] == [(outcome, code, "rotate", "inv-9"),
                                              (outcome, code, None, "inv-9")]
    assert all("secret" not in json.dumps(d) for d in decisions.decisions)
