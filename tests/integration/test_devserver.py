"""certsas serve: the plain host like ``func start``, and the TLS front end like App Service."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import azure.functions as func
import pytest
import requests
from azure.storage.blob import ContainerClient

from certsas.devtools.host import LocalApp
from certsas.devtools.server import DevServer, TlsOptions
from tests.support import ROOT
from tests.support.azurite import Azurite
from tests.support.served import CONTAINER, DevFiles, Served, b64


def _echo_app() -> func.FunctionApp:
    """An app that answers with what it was given: the request conversion, observed."""
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="echo/{name}", methods=["PUT"])
    def echo(req: func.HttpRequest) -> func.HttpResponse:
        seen = {"method": req.method, "url": req.url, "params": dict(req.params),
                "route": dict(req.route_params), "body": req.get_body().decode(),
                "headers": {k.lower(): v for k, v in req.headers.items()}}
        return func.HttpResponse(json.dumps(seen), status_code=201, mimetype="application/json",
                                 headers={"X-Echo": "yes"})

    return app


ECHO = _echo_app()


@pytest.fixture
def echo(files: DevFiles) -> Iterator[DevServer]:
    tls = TlsOptions(files.path("server.pem"), files.path("server.key"), port=0)
    with DevServer(LocalApp.from_function_app(ECHO), port=0, tls=tls) as server:
        yield server


# --- the plain host -------------------------------------------------------------------


def test_health_answers_on_the_plain_port(served: Served) -> None:
    answer = requests.get(served.server.http_url + "health", timeout=10)
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
    assert answer.headers["Content-Type"].startswith("application/json")


def test_token_with_a_forwarded_header_like_curl(served: Served) -> None:
    served.register(served.files.pki.client)
    answer = requests.post(served.http_token, timeout=10,
                           headers={"X-ARR-ClientCert": b64(served.files.pki.client)})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.json()["container"] == CONTAINER


def test_unknown_route_is_404_and_wrong_method_405(served: Served) -> None:
    missing = requests.get(served.server.http_url + "nope", timeout=10)
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    outside = requests.get(served.server.http_url.replace("/api/", "/token"), timeout=10)
    assert outside.status_code == 404
    wrong = requests.get(served.http_token, timeout=10)
    assert (wrong.status_code, wrong.headers["Allow"]) == (405, "POST")
    assert wrong.json()["error"] == "method_not_allowed"


def test_request_and_response_are_converted_whole(echo: DevServer) -> None:
    answer = requests.put(echo.http_url + "echo/bob?x=1&y=two", data=b"payload", timeout=10,
                          headers={"X-Custom": "kept", "X-ARR-ClientCert": "passed through"})
    assert (answer.status_code, answer.headers["X-Echo"]) == (201, "yes")
    seen = answer.json()
    assert (seen["method"], seen["params"], seen["route"], seen["body"]) == (
        "PUT", {"x": "1", "y": "two"}, {"name": "bob"}, "payload")
    assert seen["url"].endswith("/api/echo/bob?x=1&y=two")
    assert seen["headers"]["x-custom"] == "kept"
    # The plain port is the worker behind the front end: headers are not touched.
    assert seen["headers"]["x-arr-clientcert"] == "passed through"


# --- the TLS front end ------------------------------------------------------------------


def test_front_end_forwards_the_leaf_and_overwrites_spoofed_headers(
        echo: DevServer, files: DevFiles) -> None:
    assert echo.tls_url is not None
    answer = requests.put(
        echo.tls_url.replace("127.0.0.1", "localhost") + "echo/x", data=b"", timeout=10,
        cert=files.pair("client"), verify=files.ca,
        headers={"x-arr-clientcert": "spoofed", "X-Forwarded-For": "203.0.113.1"})
    headers = answer.json()["headers"]
    assert headers["x-arr-clientcert"] == b64(files.pki.client)
    assert headers["x-forwarded-for"].startswith("127.0.0.1:")
    assert headers["x-forwarded-proto"] == "https"


def test_front_end_forwards_in_the_configured_header(files: DevFiles) -> None:
    tls = TlsOptions(files.path("server.pem"), files.path("server.key"), port=0)
    app = LocalApp.from_function_app(ECHO, cert_header="X-ARR-ClientCert-AGW")
    with DevServer(app, port=0, tls=tls) as server:
        assert server.tls_url is not None
        answer = requests.put(server.tls_url.replace("127.0.0.1", "localhost") + "echo/x",
                              cert=files.pair("client"), verify=files.ca, timeout=10,
                              headers={"X-ARR-ClientCert": "spoofed"})
    headers = answer.json()["headers"]
    assert headers["x-arr-clientcert-agw"] == b64(files.pki.client)
    assert "x-arr-clientcert" not in headers


def test_with_tls_the_plain_port_stays_on_loopback_whatever_the_host(files: DevFiles) -> None:
    """Behind the front end the plain port trusts any caller's header as the certificate,
    so `serve --tls --host 0.0.0.0` exposes the front end alone."""
    tls = TlsOptions(files.path("server.pem"), files.path("server.key"), port=0)
    with DevServer(LocalApp.from_function_app(ECHO), host="0.0.0.0", port=0,  # noqa: S104
                   tls=tls) as server:
        assert server.http_url.startswith("http://127.0.0.1:")
        assert server.tls_url is not None and server.tls_url.startswith("https://0.0.0.0:")
        answer = requests.put(server.http_url + "echo/x", timeout=10)
        assert answer.status_code == 201
    # Without the front end the plain port is the whole app, bound where asked (func start).
    with DevServer(LocalApp.from_function_app(ECHO), host="0.0.0.0", port=0) as plain:  # noqa: S104
        assert plain.http_url.startswith("http://0.0.0.0:")


def test_tls_client_gets_a_token_that_works(served: Served) -> None:
    served.register(served.files.pki.client)
    answer = requests.post(served.tls_token, cert=served.files.pair("client"),
                           verify=served.files.ca, timeout=10)
    assert answer.status_code == 200, answer.text
    container = ContainerClient.from_container_url(answer.json()["url"])
    container.upload_blob("devserver.txt", b"through the front end", overwrite=True)
    assert container.download_blob("devserver.txt").readall() == b"through the front end"


def test_no_client_certificate_fails_the_handshake(served: Served) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(served.tls_token, verify=served.files.ca, timeout=10,
                      headers={"X-ARR-ClientCert": b64(served.files.pki.client)})


def test_untrusted_certificate_reaches_the_app_and_is_refused(served: Served) -> None:
    answer = requests.post(served.tls_token, cert=served.files.pair("untrusted-client"),
                           verify=served.files.ca, timeout=10)
    assert (answer.status_code, answer.json()["error"]) == (403, "certificate_not_trusted")


def test_spoofed_header_is_overwritten_both_ways(served: Served) -> None:
    pki = served.files.pki
    served.register(pki.client)
    # A good caller claiming to be someone else still gets its own answer ...
    good = requests.post(served.tls_token, cert=served.files.pair("client"),
                         verify=served.files.ca, timeout=10,
                         headers={"X-ARR-ClientCert": b64(pki.untrusted_client)})
    assert good.status_code == 200, good.text
    # ... and an untrusted caller claiming the registered certificate gets its own refusal.
    bad = requests.post(served.tls_token, cert=served.files.pair("untrusted-client"),
                        verify=served.files.ca, timeout=10,
                        headers={"x-ARR-clientcert": b64(pki.client)})
    assert (bad.status_code, bad.json()["error"]) == (403, "certificate_not_trusted")


# --- the command ------------------------------------------------------------------------


def test_serve_command_reads_local_settings_and_stops_on_sigterm(
        tmp_path: Path, azurite: Azurite, files: DevFiles) -> None:
    settings = tmp_path / "local.settings.json"
    values = {"TRUSTED_CA_CERTS": files.pki.trust_bundle.decode(),
              "STORAGE_CONNECTION_STRING": azurite.connection_string,
              "OCSP_MODE": "not-a-mode"}  # the environment's "off" must win
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    process = subprocess.Popen(
        [sys.executable, "-m", "certsas", "serve", "--port", "0", "--tls", "--tls-port", "0",
         "--tls-cert", str(files.path("server.pem")), "--tls-key", str(files.path("server.key")),
         "--app-dir", str(ROOT), "--settings", str(settings)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "OCSP_MODE": "off"})
    try:
        lines = [_readline(process) for _ in range(4)]
        assert lines[0].startswith("certsas serve: 3 setting(s) from ")
        plain = lines[1].split(" on ")[1].split(" ")[0]
        front = lines[2].split(" on ")[1].split(" ")[0]
        assert plain.startswith("http://127.0.0.1:") and front.startswith("https://127.0.0.1:")
        assert "forwarded as X-ARR-ClientCert" in lines[2]
        assert requests.get(plain + "health", timeout=10).json() == {"status": "ok"}
        health = requests.get(front.replace("127.0.0.1", "localhost") + "health", timeout=10,
                              cert=files.pair("client"), verify=files.ca)
        assert health.status_code == 200
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=10)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0
    assert out.strip().endswith("certsas serve: stopped")


def _readline(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        assert process.stderr is not None
        pytest.fail(f"certsas serve exited: {process.stderr.read()}")
    return line.strip()
