"""``certsas serve``'s two listeners: the local host (plain HTTP) and, with ``--tls``, the
emulated App Service front end, both dispatching to one app in this process."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from certsas.devtools.frontend import TlsServer, tls_context
from certsas.devtools.host import AppServer, LocalApp


@dataclass(frozen=True)
class TlsOptions:
    cert: Path
    key: Path
    port: int = 7443


class DevServer:
    """Both listeners in background threads: ``start()``, ``stop()``, or ``with``."""

    def __init__(self, app: LocalApp, *, host: str = "127.0.0.1", port: int = 7071,
                 tls: TlsOptions | None = None, log: TextIO | None = None) -> None:
        """``log`` receives one access line per request (``certsas serve`` passes stderr)."""
        self.app = app
        context = None
        if tls is not None:
            context = tls_context(tls.cert, tls.key)  # bad files fail before anything binds
        # Behind the front end the plain port takes any caller's header as the certificate,
        # so with --tls it stays on loopback whatever address the front end is given.
        plain_host = "127.0.0.1" if tls is not None else host
        self._servers: list[AppServer] = [AppServer((plain_host, port), app, log=log)]
        if tls is not None:
            try:
                self._servers.append(TlsServer((host, tls.port), app, context, log=log))
            except OSError:
                self._servers[0].server_close()
                raise
        self._threads: list[threading.Thread] = []

    @property
    def http_url(self) -> str:
        return self._base_url(self._servers[0])

    @property
    def tls_url(self) -> str | None:
        return self._base_url(self._servers[1]) if len(self._servers) > 1 else None

    def _base_url(self, server: AppServer) -> str:
        prefix = f"{self.app.prefix}/" if self.app.prefix else ""
        return f"{server.scheme}://{server.server_name}:{server.server_port}/{prefix}"

    def start(self) -> DevServer:
        for server in self._servers:
            # A short poll keeps stop() quick: shutdown() waits for the loop to look.
            thread = threading.Thread(target=server.serve_forever, args=(0.1,),
                                      name=f"serve-{server.scheme}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in self._servers:
            if self._threads:
                server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
