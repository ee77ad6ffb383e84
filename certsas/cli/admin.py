"""The registry commands: register, list, show, enable, disable, remove (SPEC §6).

Storage settings come from the environment, or from ``local.settings.json`` in the
current directory like ``func start`` reads them.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeAlias

from azure.core.exceptions import ResourceExistsError
from cryptography import x509

from certsas.cli.args import (
    container_arg,
    permissions_arg,
    positive_int,
    prefix_arg,
    thumbprint_arg,
)
from certsas.cli.errors import CliError
from certsas.clock import iso
from certsas.config import StorageSettings, load_local_settings
from certsas.registry import Registration, TableRegistry
from certsas.storage import StorageClients

Command = Callable[[argparse.Namespace], int]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def settings_env() -> dict[str, str]:
    """The environment, over the Values of ./local.settings.json when there is one."""
    env = load_local_settings(Path("local.settings.json"))
    env.update(os.environ)
    return env


def registry_from_env(env: Mapping[str, str], *, create_tables: bool = False) -> TableRegistry:
    """The registry the app reads; ``create_tables`` also makes both tables if missing
    (Bicep creates them in Azure; locally, ``register`` is the first thing to need them)."""
    settings = StorageSettings.from_env(env)
    clients = StorageClients(settings)
    if create_tables:
        for name in (settings.cert_table, settings.audit_table):
            clients.table_service().create_table_if_not_exists(name)
    return TableRegistry(clients.registry_table())


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
    registration = registry_from_env(settings_env()).find(args.thumbprint)
    if registration is None:
        raise CliError(f"{args.thumbprint} is not registered")
    _print_registration(registration)
    if args.pem:
        print(registration.certificate_pem, end="")
    return 0


def _set_enabled(enabled: bool) -> Command:
    def command(args: argparse.Namespace) -> int:
        try:
            changed = registry_from_env(settings_env()).set_enabled(args.thumbprint, enabled)
        except KeyError:
            raise CliError(f"{args.thumbprint} is not registered") from None
        print(f"{'enabled' if enabled else 'disabled'} {changed.thumbprint}")
        return 0

    return command


def cmd_remove(args: argparse.Namespace) -> int:
    try:
        removed = registry_from_env(settings_env()).remove(args.thumbprint)
    except KeyError:
        raise CliError(f"{args.thumbprint} is not registered") from None
    print(f"removed {removed.thumbprint}")
    return 0


def _print_registration(r: Registration) -> None:
    rows = [
        ("subject", r.subject), ("issuer", r.issuer), ("serial", r.serial),
        ("not before", iso(r.not_before)),
        ("not after", iso(r.not_after)),
        ("sha-256", r.thumbprint), ("sha-1", r.thumbprint_sha1),
        ("container", r.container), ("prefix", r.prefix or "(none: container-scoped allowed)"),
        ("permissions", r.permissions), ("max ttl", f"{r.max_ttl_minutes} minutes"),
        ("enabled", "yes" if r.enabled else "no"), ("description", r.description),
    ]
    for label, value in rows:
        print(f"  {label:<12} {value}")


def add_commands(commands: Subparsers) -> None:
    """Add the registry commands to the ``certsas`` parser."""
    register = commands.add_parser("register", help="register a client certificate",
                                   description="Register a PEM client certificate and its scope.")
    register.add_argument("cert", metavar="CERT.pem")
    register.add_argument("--container", required=True, type=container_arg)
    register.add_argument("--permissions", default="rl", type=permissions_arg,
                          help="SAS letters from racwdl (default: rl)")
    register.add_argument("--max-ttl-minutes", default=60, type=positive_int)
    register.add_argument("--prefix", default="", type=prefix_arg,
                          help="only blobs in this folder (ends with '/', e.g. tenant-a/)")
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
