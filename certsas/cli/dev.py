"""Developer commands: ``dev-pki`` and ``serve`` (SPEC §6), and the client side's ``token``
and ``rotate`` from :mod:`certsas.cli.client`."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import socket
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, TypeAlias

import azure.functions as func

from certsas.cli import client
from certsas.cli.args import http_url, port
from certsas.cli.errors import CliError
from certsas.cli.settings import PRECEDENCE_HELP, file_values_to_use
from certsas.config import DEFAULT_CLIENT_CERT_HEADER, load_local_settings
from certsas.devtools.frontend import ssl_reason
from certsas.devtools.host import LocalApp, route_prefix
from certsas.devtools.pki import DevPki
from certsas.devtools.server import DevServer, TlsOptions

DEFAULT_OCSP_URL = "http://127.0.0.1:7080/ocsp"
DEFAULT_CRL_URL = "http://127.0.0.1:7081/issuing-ca.crl"
DEFAULT_PKI_DIR = Path(".dev") / "pki"
# Only subscriptable for the type checker.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_commands(commands: Subparsers) -> None:
    """Add the developer sub-commands to the ``certsas`` parser."""
    _add_dev_pki(commands)
    _add_serve(commands)
    client.add_commands(commands)  # token and rotate, on the client library


# --- dev-pki ---------------------------------------------------------------------------


def _add_dev_pki(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "dev-pki", help="write a throw-away PKI for local work",
        description="Write a throw-away root CA, issuing CA, OCSP signer, client and server "
                    "certificates (with keys) for local work. Never use them outside a laptop.")
    parser.add_argument("dir", metavar="DIR", type=Path)
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument("--ocsp-url", default=DEFAULT_OCSP_URL, type=http_url,
                        help=f"OCSP URL written into the client certificates "
                             f"(default: {DEFAULT_OCSP_URL})")
    parser.add_argument("--crl-url", default=DEFAULT_CRL_URL, type=http_url,
                        help=f"CRL distribution point written into the client certificates "
                             f"(default: {DEFAULT_CRL_URL}; serve issuing-ca.crl there with "
                             f"python -m certsas.devtools.crl_server)")
    parser.add_argument("--settings", type=Path, metavar="PATH",
                        help="also write a local.settings.json there: local.settings.json.example "
                             "with TRUSTED_CA_CERTS set to this PKI's CAs")
    parser.set_defaults(func=cmd_dev_pki)


def cmd_dev_pki(args: argparse.Namespace) -> int:
    if args.settings is not None and args.settings.exists() and not args.force:
        raise CliError(f"{args.settings} exists (use --force to overwrite)")
    pki = DevPki.create(args.ocsp_url, args.crl_url)
    try:
        written = pki.write(args.dir, force=args.force)
    except FileExistsError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write to {args.dir}: {exc.strerror}") from None
    print(f"wrote a throw-away PKI to {args.dir} (OCSP URL in the certificates: {args.ocsp_url}, "
          f"CRL URL: {args.crl_url})")
    width = max(len(str(path)) for path, _ in written)
    for path, purpose in written:
        print(f"  {path!s:<{width}}  {purpose}")
    if args.settings is not None:
        write_local_settings(args.settings, pki.trust_bundle.decode("ascii"))
        print(f"wrote {args.settings}: TRUSTED_CA_CERTS trusts this PKI's issuing and root CAs")
    return 0


def write_local_settings(path: Path, trust_bundle: str) -> None:
    """local.settings.json from the example beside it (or the essentials), trusting ``trust_bundle``."""

    example = Path("local.settings.json.example")
    document: dict[str, Any] = {"IsEncrypted": False, "Values": {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
    }}
    if example.exists():
        document = json.loads(example.read_text(encoding="utf-8"))
    document["Values"]["TRUSTED_CA_CERTS"] = trust_bundle
    try:
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from None


# --- serve -------------------------------------------------------------------------------


def _add_serve(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "serve", help="run the app locally, like func start (and its front end with --tls)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Run the app locally like `func start`: plain HTTP on --port (7071) under\n"
            "/api/<route>, headers passed through unchanged, settings from local.settings.json\n"
            "(the environment wins; see below).\n\n"
            "With --tls, also emulate the App Service front end on --tls-port (7443): TLS that\n"
            "requires a client certificate, checks only that the caller holds its key, and\n"
            "forwards it as base64 DER in CLIENT_CERT_HEADER (X-ARR-ClientCert), overwriting\n"
            "any such header the caller sent. The plain port stays open for curl, as the\n"
            "worker behind the front end (in Azure nobody outside can reach it)."),
        epilog=(
            "examples:\n"
            "  certsas serve\n"
            "  curl -X POST http://localhost:7071/api/token \\\n"
            "       -H \"X-ARR-ClientCert: $(openssl x509 -in client.pem -outform DER | base64 -w0)\"\n"
            "  certsas serve --tls\n"
            "  certsas token --url https://localhost:7443/api/token --cert .dev/pki/client.pem \\\n"
            "       --key .dev/pki/client.key --ca .dev/pki/trusted-ca-certs.pem\n\n"
            "settings:\n" + textwrap.fill(PRECEDENCE_HELP, 78, initial_indent="  ",
                                          subsequent_indent="  ")))
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=port, default=7071, help="plain HTTP port (default: 7071)")
    parser.add_argument("--tls", action="store_true", help="also run the mTLS front end")
    parser.add_argument("--tls-port", type=port, default=7443, help="front-end port (default: 7443)")
    parser.add_argument("--tls-cert", type=Path, default=DEFAULT_PKI_DIR / "server.pem",
                        help="server certificate, PEM, leaf first (default: .dev/pki/server.pem)")
    parser.add_argument("--tls-key", type=Path, default=DEFAULT_PKI_DIR / "server.key",
                        help="server key, PEM (default: .dev/pki/server.key)")
    parser.add_argument("--app-dir", type=Path, default=Path("."),
                        help="folder holding function_app.py and host.json (default: .)")
    parser.add_argument("--settings", type=Path, default=None,
                        help="settings file (default: APP_DIR/local.settings.json)")
    parser.set_defaults(func=cmd_serve)


def load_function_app(app_dir: Path, settings_file: Path | None) -> tuple[func.FunctionApp, int]:
    """Settings into the environment (the environment wins), then import function_app.

    The order is Core Tools': function_app checks its settings when it is imported.
    Returns the app and how many settings came from the file.
    """
    if not (app_dir / "function_app.py").is_file():
        raise CliError(f"{app_dir / 'function_app.py'} not found (use --app-dir)")
    path = settings_file or app_dir / "local.settings.json"
    if settings_file is not None and not path.is_file():
        raise CliError(f"cannot read settings file {path}")
    values = load_local_settings(path)
    # The same precedence as the registry commands (certsas.cli.settings).
    os.environ.update(file_values_to_use(os.environ, values))
    sys.path.insert(0, str(app_dir.resolve()))
    app = getattr(importlib.import_module("function_app"), "app", None)
    if not isinstance(app, func.FunctionApp):
        raise CliError(f"{app_dir / 'function_app.py'} defines no FunctionApp named app")
    return app, len(values)


def cmd_serve(args: argparse.Namespace) -> int:
    tls = None
    if args.tls:
        for path in (args.tls_cert, args.tls_key):
            if not path.is_file():
                raise CliError(f"{path} not found (run `certsas dev-pki {DEFAULT_PKI_DIR}`, "
                               f"or give --tls-cert/--tls-key)")
        tls = TlsOptions(args.tls_cert, args.tls_key, args.tls_port)
    app, loaded = load_function_app(args.app_dir, args.settings)
    header = os.environ.get("CLIENT_CERT_HEADER", "").strip() or DEFAULT_CLIENT_CERT_HEADER
    local = LocalApp.from_function_app(app, prefix=route_prefix(args.app_dir), cert_header=header)
    try:
        server = DevServer(local, host=args.host, port=args.port, tls=tls, log=sys.stderr)
    except OSError as exc:
        raise CliError(_listen_failure(args, exc)) from None
    except Exception as exc:  # pyOpenSSL's own error type: only frontend imports pyOpenSSL
        raise CliError(f"cannot use {args.tls_cert} with {args.tls_key}: {ssl_reason(exc)}"
                       ) from None
    _announce(server, loaded, args, header)
    _run_until_signalled(server)
    print("certsas serve: stopped", flush=True)
    return 0


def _listen_failure(args: argparse.Namespace, exc: OSError) -> str:
    """Which port could not be had: each is tried again alone (the plain one stays on
    loopback under --tls, as DevServer binds it)."""
    wanted = [("127.0.0.1" if args.tls else args.host, args.port, "--port")]
    if args.tls:
        wanted.append((args.host, args.tls_port, "--tls-port"))
    for host, number, option in wanted:
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.create_server((host, number), family=family):
                pass
        except OSError as busy:
            reason = os.strerror(busy.errno) if busy.errno else str(busy)
            return (f"cannot listen on {host} port {number}: {reason} "
                    f"(another certsas serve or func start? {option} picks another)")
    return f"cannot listen on {args.host}: {exc.strerror or exc}"


def _announce(server: DevServer, loaded: int, args: argparse.Namespace, header: str) -> None:
    source = args.settings or args.app_dir / "local.settings.json"
    print(f"certsas serve: {loaded} setting(s) from {source} (the environment wins)")
    print(f"certsas serve: app on {server.http_url} ({server.app.describe()})")
    if server.tls_url:
        print(f"certsas serve: App Service front end on {server.tls_url} "
              f"(client certificate required, forwarded as {header})")
    print("certsas serve: Ctrl-C to stop", flush=True)


def _run_until_signalled(server: DevServer) -> None:
    stop = threading.Event()
    handlers = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    server.start()
    try:
        # A timed wait lets the signal handler run promptly in the main thread.
        while not stop.wait(0.2):
            pass
    finally:
        server.stop()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
