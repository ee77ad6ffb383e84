"""``certsas`` / ``python -m certsas``: manage registrations, and the developer tools (SPEC §6).

Every command prints what it did; bad input is one line on stderr and a non-zero exit.
Storage settings come from the environment, or from ``local.settings.json`` in the
current directory like ``func start`` reads them.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from azure.core.exceptions import AzureError, ResourceExistsError
from cryptography import x509

from certsas.config import load_local_settings, storage_from_env
from certsas.errors import ConfigurationError, Refusal
from certsas.permissions import normalize_permissions
from certsas.registry import Registration, TableRegistry
from certsas.scope import valid_container_name
from certsas.storage import StorageClients

Command = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """Bad input or an unreachable dependency; printed as one line."""


def settings_env() -> dict[str, str]:
    """The environment, over the Values of ./local.settings.json when there is one."""
    env = load_local_settings(Path("local.settings.json"))
    env.update(os.environ)
    return env


def table_names(env: Mapping[str, str]) -> tuple[str, str]:
    """(registry, audit) table names, as the app reads them."""
    return (env.get("CERT_TABLE_NAME", "").strip() or "ClientCertificates",
            env.get("AUDIT_TABLE_NAME", "").strip() or "TokenAudit")


def registry_from_env(env: Mapping[str, str], *, create_tables: bool = False) -> TableRegistry:
    """The registry the app reads; ``create_tables`` also makes both tables if missing
    (Bicep creates them in Azure; locally, ``register`` is the first thing to need them)."""
    clients = StorageClients(storage_from_env(env))
    names = table_names(env)
    if create_tables:
        for name in names:
            clients.table_service().create_table_if_not_exists(name)
    return TableRegistry(clients.table(names[0]))


def thumbprint_arg(value: str) -> str:
    cleaned = value.replace(":", "").strip().upper()
    if not re.fullmatch(r"[0-9A-F]{64}", cleaned):
        raise argparse.ArgumentTypeError(f"{value!r} is not a SHA-256 thumbprint (64 hex digits)")
    return cleaned


def permissions_arg(value: str) -> str:
    try:
        return normalize_permissions(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def container_arg(value: str) -> str:
    if not valid_container_name(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a valid container name")
    return value


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def cmd_register(args: argparse.Namespace) -> int:
    path = Path(args.cert)
    try:
        certificates = x509.load_pem_x509_certificates(path.read_bytes())
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError:
        raise CliError(f"{path} is not a PEM certificate") from None
    if len(certificates) != 1:
        raise CliError(f"{path} holds {len(certificates)} certificates; register one at a time")
    registration = Registration.for_certificate(
        certificates[0], container=args.container, permissions=args.permissions,
        prefix=args.prefix, max_ttl_minutes=args.max_ttl_minutes, description=args.description,
    )
    registry = registry_from_env(settings_env(), create_tables=True)
    if args.replace:
        registry.put(registration)
    else:
        try:
            registry.add(registration)
        except ResourceExistsError:
            raise CliError(
                f"{registration.thumbprint} is already registered (use --replace to overwrite)"
            ) from None
    print(f"registered {registration.thumbprint}")
    _print_registration(registration)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    registrations = list(registry_from_env(settings_env()).list())
    if not registrations:
        print("no registrations")
        return 0
    print(f"{'THUMBPRINT (SHA-256)':<64}  {'ON':<3} {'CONTAINER':<20} {'PERM':<6} SUBJECT")
    for r in sorted(registrations, key=lambda r: (r.container, r.subject)):
        print(f"{r.thumbprint:<64}  {'yes' if r.enabled else 'no':<3} "
              f"{(r.container + '/' + r.prefix if r.prefix else r.container):<20} "
              f"{r.permissions:<6} {r.subject}")
    print(f"{len(registrations)} registration(s)")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    registration = registry_from_env(settings_env()).get(args.thumbprint)
    if registration is None:
        raise CliError(f"{args.thumbprint} is not registered")
    _print_registration(registration)
    if args.pem:
        print(registration.certificate_pem, end="")
    return 0


def _set_enabled(enabled: bool) -> Command:
    def command(args: argparse.Namespace) -> int:
        try:
            registry_from_env(settings_env()).set_enabled(args.thumbprint, enabled)
        except KeyError:
            raise CliError(f"{args.thumbprint} is not registered") from None
        print(f"{'enabled' if enabled else 'disabled'} {args.thumbprint}")
        return 0

    return command


def cmd_remove(args: argparse.Namespace) -> int:
    try:
        registry_from_env(settings_env()).remove(args.thumbprint)
    except KeyError:
        raise CliError(f"{args.thumbprint} is not registered") from None
    print(f"removed {args.thumbprint}")
    return 0


def _print_registration(r: Registration) -> None:
    rows = [
        ("subject", r.subject), ("issuer", r.issuer), ("serial", r.serial),
        ("not before", f"{r.not_before:%Y-%m-%dT%H:%M:%SZ}"),
        ("not after", f"{r.not_after:%Y-%m-%dT%H:%M:%SZ}"),
        ("sha-256", r.thumbprint), ("sha-1", r.thumbprint_sha1),
        ("container", r.container), ("prefix", r.prefix or "(none: container-scoped allowed)"),
        ("permissions", r.permissions), ("max ttl", f"{r.max_ttl_minutes} minutes"),
        ("enabled", "yes" if r.enabled else "no"), ("description", r.description),
    ]
    for label, value in rows:
        print(f"  {label:<12} {value}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="certsas", description="Trade a client certificate for a scoped Azure Blob SAS token.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    register = commands.add_parser("register", help="register a client certificate",
                                   description="Register a PEM client certificate and its scope.")
    register.add_argument("cert", metavar="CERT.pem")
    register.add_argument("--container", required=True, type=container_arg)
    register.add_argument("--permissions", default="rl", type=permissions_arg,
                          help="SAS letters from racwdl (default: rl)")
    register.add_argument("--max-ttl-minutes", default=60, type=positive_int)
    register.add_argument("--prefix", default="", help="only blobs whose names start with this")
    register.add_argument("--description", default="")
    register.add_argument("--replace", action="store_true", help="overwrite an existing one")
    register.set_defaults(func=cmd_register)

    commands.add_parser("list", help="list registrations",
                        description="List every registration.").set_defaults(func=cmd_list)
    show = commands.add_parser("show", help="show one registration",
                               description="Show one registration.")
    show.add_argument("thumbprint", type=thumbprint_arg)
    show.add_argument("--pem", action="store_true", help="also print the certificate")
    show.set_defaults(func=cmd_show)
    for name, func, what in (("enable", _set_enabled(True), "enable"),
                             ("disable", _set_enabled(False), "disable"),
                             ("remove", cmd_remove, "remove")):
        sub = commands.add_parser(name, help=f"{what} a registration",
                                  description=f"{what.capitalize()} a registration.")
        sub.add_argument("thumbprint", type=thumbprint_arg)
        sub.set_defaults(func=func)

    for add_dev_commands in _dev_command_modules():
        add_dev_commands(commands)
    return parser


def _dev_command_modules() -> list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]]:
    """Developer commands (dev-pki, serve, token) live in their own modules."""
    from certsas import devcli

    return [devcli.add_commands]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except (CliError, ConfigurationError) as exc:
        print(f"certsas {args.command}: error: {exc}", file=sys.stderr)
    except Refusal as exc:  # e.g. the registry table does not exist yet
        print(f"certsas {args.command}: error: {exc.detail}", file=sys.stderr)
    except AzureError as exc:
        print(f"certsas {args.command}: error: storage request failed ({type(exc).__name__})",
              file=sys.stderr)
    except KeyboardInterrupt:
        print(f"certsas {args.command}: interrupted", file=sys.stderr)
        return 130
    return 1
