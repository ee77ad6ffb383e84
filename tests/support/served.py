"""The app served for real, for the developer-tool suites: a written DevPki, and the
:class:`~tests.support.stack.Stack` behind ``DevServer`` (plain HTTP and the TLS front
end, on free ports) in this process, so a test talks to the app through real sockets
and real TLS.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from certsas.devtools.host import LocalApp
from certsas.devtools.pki import DevPki, Issued
from certsas.devtools.server import DevServer, TlsOptions
from certsas.registration import Registration
from certsas.registry import TableRegistry
from certsas.runtime import reset_broker
from tests.support.azurite import Azurite
from tests.support.stack import app_env, build_stack

CONTAINER = "devtools"


@dataclass(frozen=True)
class DevFiles:
    """A DevPki and the folder ``certsas dev-pki`` would have written it to."""

    pki: DevPki
    dir: Path

    def path(self, name: str) -> Path:
        return self.dir / name

    def pair(self, name: str) -> tuple[str, str]:
        """``requests``' ``cert=``: the certificate and key files of ``name``."""
        return str(self.path(f"{name}.pem")), str(self.path(f"{name}.key"))

    @property
    def ca(self) -> str:
        return str(self.path("trusted-ca-certs.pem"))


def write_dev_pki(directory: Path) -> DevFiles:
    # The AIA URL points nowhere: these suites run with REVOCATION_MODE=off.
    pki = DevPki.create("http://127.0.0.1:9/ocsp")
    pki.write(directory)
    return DevFiles(pki, directory)


def b64(issued: Issued) -> str:
    return base64.b64encode(issued.der).decode("ascii")


@dataclass(frozen=True)
class Served:
    server: DevServer
    files: DevFiles
    registry: TableRegistry
    env: dict[str, str]

    @property
    def http_token(self) -> str:
        return self.server.http_url + "token"

    @property
    def tls_token(self) -> str:
        assert self.server.tls_url is not None
        return self.server.tls_url.replace("127.0.0.1", "localhost") + "token"

    def register(self, issued: Issued, **kwargs: Any) -> Registration:
        kwargs.setdefault("container", CONTAINER)
        kwargs.setdefault("permissions", "racwl")
        registration = Registration.for_certificate(issued.certificate, **kwargs)
        self.registry.put(registration)
        return registration


@contextmanager
def served_app(monkeypatch: pytest.MonkeyPatch, azurite: Azurite, files: DevFiles,
               tables: tuple[str, str]) -> Iterator[Served]:
    env = app_env(azurite, files.pki.trust_bundle.decode("ascii"), tables)
    stack = build_stack(monkeypatch, env, azurite.connection_string, containers=(CONTAINER,))
    import function_app

    tls = TlsOptions(files.path("server.pem"), files.path("server.key"), port=0)
    with DevServer(LocalApp.from_function_app(function_app.app), port=0, tls=tls) as server:
        yield Served(server, files, stack.registry, env)
    reset_broker()
