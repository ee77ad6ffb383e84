"""The HTTP layer: refusals and accidents become JSON with the right status, never a trace."""

from __future__ import annotations

import json

import azure.functions as func
import pytest

from certsas import http
from certsas.errors import ConfigurationError, ScopeNotAllowed


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


def test_a_late_configuration_error_is_a_500_naming_no_setting() -> None:
    status, body, _ = answer(ConfigurationError("TRUSTED_CA_CERTS", "is required"))
    assert (status, body["error"]) == (500, "configuration_error")
    assert "TRUSTED_CA_CERTS" not in body["message"]


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

