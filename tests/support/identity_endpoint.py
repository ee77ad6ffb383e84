"""A loopback stand-in for App Service's managed identity endpoint (``IDENTITY_ENDPOINT``
and ``IDENTITY_HEADER``, api-version 2019-08-01), so azure-identity's own
``ManagedIdentityCredential`` runs here: each request gets a new token, and the endpoint
counts them."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

HEADER_SECRET = "loopback-identity-header"


class IdentityEndpoint:
    def __init__(self, lifetime: int = 86_400) -> None:
        self.lifetime = lifetime
        self.requests: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/msi/token"

    def __enter__(self) -> IdentityEndpoint:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.headers.get("X-IDENTITY-HEADER") != HEADER_SECRET:
                    self.send_error(400)
                    return
                endpoint.requests.append(self.path)
                body = json.dumps({
                    "access_token": f"mi-token-{len(endpoint.requests)}",
                    "expires_on": str(int(time.time()) + endpoint.lifetime),
                    "resource": "https://storage.azure.com", "token_type": "Bearer",
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
