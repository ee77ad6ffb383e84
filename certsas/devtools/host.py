"""``certsas serve``: a local host for the app like ``func start``, and an App Service front end.

Port layout:

- ``--port`` (default 7071) serves the app over plain HTTP under ``/api/<route>``, as
  ``func start`` does. Headers pass through unchanged, so a developer can inject
  ``X-ARR-ClientCert`` with curl exactly as the Azure docs show. In Azure this port is
  the worker behind the front end and is never reachable from outside.
- ``--tls`` adds the front end on ``--tls-port`` (default 7443): TLS that *requires* a
  client certificate, checks only that the caller holds its key (as App Service with
  ``clientCertMode=Required`` does), and forwards the leaf as base64 DER in the app's
  ``CLIENT_CERT_HEADER`` (default ``X-ARR-ClientCert``), overwriting any such header the
  caller sent. Both listeners dispatch to the same app in this process.
"""

from __future__ import annotations

import json
import re
import socketserver
import sys
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

from certsas.devtools.routes import Route, http_routes

DEFAULT_CERT_HEADER = "X-ARR-ClientCert"
MAX_BODY_BYTES = 1024 * 1024
IO_TIMEOUT_SECONDS = 30
Header = tuple[str, str]


@dataclass(frozen=True)
class Reply:
    status: int
    headers: tuple[Header, ...]
    body: bytes


@dataclass(frozen=True)
class LocalContext:
    """What a v2 function may ask of its ``context`` argument."""

    invocation_id: str
    function_name: str
    function_directory: str = ""


@dataclass(frozen=True)
class LocalApp:
    """A Functions app's HTTP routes under a prefix, callable without the Functions host."""

    routes: tuple[Route, ...]
    prefix: str = "api"
    cert_header: str = DEFAULT_CERT_HEADER

    @classmethod
    def from_function_app(cls, app: func.FunctionApp, *, prefix: str = "api",
                          cert_header: str = DEFAULT_CERT_HEADER) -> LocalApp:
        return cls(http_routes(app), prefix.strip("/"), cert_header)

    def describe(self) -> str:
        return ", ".join(f"{'|'.join(sorted(r.methods))} {r.route}" for r in self.routes)

    def dispatch(self, method: str, url: str, headers: Iterable[Header], body: bytes) -> Reply:
        path = urlsplit(url).path
        matched = [(r, m.groupdict()) for r in self.routes
                   if (m := _route_pattern(self.prefix, r.route).fullmatch(path))]
        if not matched:
            return _json_reply(404, "not_found", f"no function answers {path}")
        for route, route_params in matched:
            if method in route.methods:
                return _invoke(route, _to_request(method, url, headers, body, route_params))
        allowed = ", ".join(sorted(set().union(*(r.methods for r, _ in matched))))
        reply = _json_reply(405, "method_not_allowed", f"{path} does not accept {method}")
        return Reply(reply.status, (*reply.headers, ("Allow", allowed)), reply.body)


def route_prefix(app_dir: Path) -> str:
    """``extensions.http.routePrefix`` of host.json, as the Functions host reads it."""
    try:
        host = json.loads((app_dir / "host.json").read_text(encoding="utf-8"))
        return str(host["extensions"]["http"]["routePrefix"]).strip("/")
    except (OSError, ValueError, KeyError, TypeError):
        return "api"


def _route_pattern(prefix: str, route: str) -> re.Pattern[str]:
    # Functions route templates: "{name}" or "{name:constraint}" match one path segment.
    parts = [p for p in (prefix, route.strip("/")) if p]
    regex = re.sub(r"\\\{(\w+)(?::[^}]*)?\\\}", r"(?P<\1>[^/]+)", re.escape("/" + "/".join(parts)))
    return re.compile(regex, re.IGNORECASE)


def _to_request(method: str, url: str, headers: Iterable[Header], body: bytes,
                route_params: Mapping[str, str]) -> func.HttpRequest:
    merged: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        # The Functions host joins a repeated header with ", "; so do we.
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    params = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    return func.HttpRequest(method=method, url=url, headers=merged, params=params,
                            route_params=dict(route_params), body=body)


def _invoke(route: Route, request: func.HttpRequest) -> Reply:
    kwargs: dict[str, Any] = {}
    if route.wants_context:
        kwargs["context"] = LocalContext(str(uuid.uuid4()), route.name)
    try:
        response = route.handler(request, **kwargs)
    except Exception as exc:
        # The Functions host answers 500 with no detail; the developer sees the type here.
        print(f"certsas serve: function {route.name} raised {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return _json_reply(500, "internal_error", "the function raised an exception")
    if not isinstance(response, func.HttpResponse):
        return _json_reply(500, "internal_error", f"{route.name} returned no HttpResponse")
    return _from_response(response)


def _from_response(response: func.HttpResponse) -> Reply:
    headers = [(str(k), str(v)) for k, v in response.headers.items()]
    if not any(k.lower() == "content-type" for k, _ in headers):
        mimetype = response.mimetype or "text/plain"
        charset = f"; charset={response.charset}" if response.charset else ""
        headers.append(("Content-Type", mimetype + charset))
    return Reply(response.status_code, tuple(headers), response.get_body() or b"")


def _json_reply(status: int, error: str, message: str) -> Reply:
    body = json.dumps({"error": error, "message": message}).encode()
    return Reply(status, (("Content-Type", "application/json"),), body)


# --- the HTTP side ------------------------------------------------------------------


class AppHandler(BaseHTTPRequestHandler):
    server_version = "certsas-serve"
    sys_version = ""
    timeout = IO_TIMEOUT_SECONDS  # a silent client frees its thread
    server: AppServer

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def forwarded_headers(self) -> list[Header]:
        """What the app sees of the caller's headers; the front end overrides this."""
        return list(self.headers.items())

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        host = self.headers.get("Host") or f"{self.server.server_name}:{self.server.server_port}"
        url = f"{self.server.scheme}://{host}{self.path}"
        reply = self.server.app.dispatch(self.command, url, self.forwarded_headers(), body)
        self._send(reply)

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._send(_json_reply(411, "length_required", "send a Content-Length"))
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._send(_json_reply(413, "payload_too_large", "body over 1 MiB or bad length"))
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers:
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        self.server.log(f"{self.client_address[0]} {format % args}")


class AppServer(ThreadingHTTPServer):
    daemon_threads = True  # a stuck client must not hold up Ctrl-C
    scheme = "http"

    def __init__(self, address: tuple[str, int], app: LocalApp,
                 handler: type[AppHandler] = AppHandler, *, log: TextIO | None = None) -> None:
        self.app = app
        self.log_to = log
        super().__init__(address, handler)

    def log(self, line: str) -> None:
        if self.log_to is not None:
            print(f"certsas serve: {self.scheme} {line}", file=self.log_to, flush=True)

    def server_bind(self) -> None:
        # HTTPServer.server_bind also resolves the host's FQDN, which can hang without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]
