"""The registry commands: register, list, show, enable, disable, remove (SPEC §6).

Settings come from the environment, then ``local.settings.json`` in the current
directory like ``func start`` reads them (:mod:`certsas.cli.settings`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeAlias

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from certsas.accounts import AccountKeyAccess
from certsas.cli import failures
from certsas.cli.args import (
    DEFAULT_MAX_TTL_MINUTES,
    MAX_DAYS,
    MAX_TTL_HELP,
    THUMBPRINT_HELP,
    container_arg,
    days_arg,
    max_ttl_minutes_arg,
    permissions_arg,
    prefix_arg,
    thumbprint_arg,
)
from certsas.cli.certfile import read_certificate
from certsas.cli.errors import CliError
from certsas.cli.settings import PRECEDENCE_HELP, settings_env
from certsas.cli.text import printable
from certsas.cli.vetting import objections
from certsas.cli.views import as_json, cap_note, extra_list_lines, still_working, text_lines
from certsas.clock import iso, system_clock
from certsas.config import StorageSettings, parse_trust_anchors
from certsas.expiry import days_left
from certsas.registration import Registration
from certsas.registry import TableRegistry, Unreadable
from certsas.storage import StorageClients

Command = Callable[[argparse.Namespace], int]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
DISABLE_HELP = (
    "Disable a registration: the app refuses its certificate (certificate_not_registered) "
    "once each instance's cached registry read expires, within REGISTRY_CACHE_SECONDS "
    "(default 30). Tokens already issued stay valid until they expire; `certsas "
    "revoke-tokens` makes every token issued so far useless (SPEC §2b).")


def registry_from_env(env: Mapping[str, str], *, create_tables: bool = False) -> TableRegistry:
    """The registry the app reads; ``create_tables``: see :func:`ensure_tables`."""
    settings = StorageSettings.from_env(env)
    clients = StorageClients(settings)
    if create_tables:
        ensure_tables(clients)
    return TableRegistry(clients.registry_table())


def tables_to_create(settings: StorageSettings) -> tuple[str, ...]:
    """Locally (a connection string: Azurite, or an account key) both tables, made if
    missing. In Azure (``STORAGE_ACCOUNT_NAME``) none: the Bicep makes them, and the
    operator's role (Storage Table Data Contributor on the registry table) cannot."""
    if isinstance(settings.access, AccountKeyAccess):
        return settings.cert_table, settings.audit_table
    return ()


def ensure_tables(clients: StorageClients) -> None:
    """Create what :func:`tables_to_create` names. A 403 on a create is not the command's
    business: the table may well exist, and the write that follows will tell."""
    for name in tables_to_create(clients.settings):
        try:
            clients.table_service().create_table_if_not_exists(name)
        except HttpResponseError as exc:
            if exc.status_code != 403:
                raise
            code = failures.error_code(exc) or "Forbidden"
            print(f"certsas register: note: not allowed to create table {name} ({code}); "
                  "using it as it is", file=sys.stderr)


def cmd_register(args: argparse.Namespace) -> int:
    path = Path(args.cert)
    certificate = read_certificate(path).certificate
    env = settings_env()
    anchors_pem = env.get("TRUSTED_CA_CERTS", "").strip()
    anchors = parse_trust_anchors(anchors_pem) if anchors_pem else ()
    now = datetime.now(UTC)
    problems = objections(certificate, now, anchors)
    if problems and not args.force:
        raise CliError(f"{path}: {'; '.join(problems)} (--force registers it anyway)")
    registration = Registration.for_certificate(
        certificate, container=args.container, permissions=args.permissions,
        prefix=args.prefix, max_ttl_minutes=args.max_ttl_minutes, description=args.description,
        allow_rotation=args.allow_rotation,
    )
    registry = registry_from_env(env, create_tables=True)
    verb = "registered"
    try:
        try:
            registry.add(registration)
        except ResourceExistsError:
            if not args.replace:
                raise CliError(f"{registration.thumbprint} is already registered (use "
                               "--replace to overwrite)") from None
            # Only now overwrite: so a script with --replace says which it did.
            registry.put(registration)
            verb = "replaced"
    except ResourceNotFoundError as exc:
        if failures.error_code(exc) != "TableNotFound":
            raise
        settings = StorageSettings.from_env(env)
        raise CliError(f"table {settings.cert_table} does not exist at "
                       f"{settings.access.table_endpoint} (in Azure the Bicep creates it)"
                       ) from None
    print(f"{verb} {registration.thumbprint}")
    for problem in problems:
        print(f"  forced past: {printable(problem)}")
    if certificate.not_valid_before_utc > now:
        print(f"  not valid until {iso(certificate.not_valid_before_utc)}: the app refuses it "
              "until then (certificate_expired)")
    _print_registration(registration)
    for line in cap_note(registration, env):
        print(line)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Every registration, or with ``--expiring DAYS`` those whose certificate expires
    within DAYS or has expired (disabled ones too: the ON column tells), soonest first."""
    now = system_clock()
    registrations: list[Registration] = []
    for item in registry_from_env(settings_env()).scan():
        if isinstance(item, Unreadable):
            print(f"certsas list: warning: {printable(item.thumbprint)} cannot be read "
                  f"({printable(item.reason)})", file=sys.stderr)
        else:
            registrations.append(item)
    if args.expiring is not None:
        horizon = now + timedelta(days=args.expiring)
        registrations = sorted((r for r in registrations if r.not_after <= horizon),
                               key=lambda r: (r.not_after, r.thumbprint))
    else:
        registrations.sort(key=lambda r: (r.grants[0].container, r.subject, r.thumbprint))
    if args.json:
        print(json.dumps([as_json(r, now) for r in registrations], indent=2))
        return 0
    if not registrations:
        print("no registrations" if args.expiring is None
              else f"no registrations expiring within {args.expiring} days")
        return 0
    print(f"{'THUMBPRINT (SHA-256)':<64}  {'ON':<3} {'CONTAINER':<20} {'PERM':<6} "
          f"{'NOT AFTER':<20} {'DAYS':>5}  SUBJECT")
    for r in registrations:
        print(f"{r.thumbprint:<64}  {'yes' if r.enabled else 'no':<3} "
              f"{printable(r.grants[0].describe()):<20} "
              f"{r.grants[0].permissions:<6} {iso(r.not_after):<20} "
              f"{days_left(r.not_after, now):>5}  {printable(r.subject)}")
        for line in extra_list_lines(r, indent=70):
            print(line)
    print(f"{len(registrations)} registration(s)")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    env = settings_env()
    registration = registry_from_env(env).find(args.thumbprint)
    if registration is None:
        raise CliError(f"{args.thumbprint} is not registered")
    if args.json:
        print(json.dumps(as_json(registration, system_clock(), pem=True), indent=2))
        return 0
    _print_registration(registration)
    for line in cap_note(registration, env):
        print(line)
    if args.pem:
        print(registration.certificate_pem, end="")
    return 0


def _set_enabled(enabled: bool) -> Command:
    def command(args: argparse.Namespace) -> int:
        env = settings_env()
        try:
            changed = registry_from_env(env).set_enabled(args.thumbprint, enabled)
        except KeyError:
            raise CliError(f"{args.thumbprint} is not registered") from None
        print(f"{'enabled' if enabled else 'disabled'} {changed.thumbprint}")
        if not enabled:
            for line in still_working(changed, env):
                print(f"  {line}")
        return 0

    return command


def cmd_remove(args: argparse.Namespace) -> int:
    try:
        env = settings_env()
        removed = registry_from_env(env).remove(args.thumbprint)
    except KeyError:
        raise CliError(f"{args.thumbprint} is not registered") from None
    print(f"removed {removed.thumbprint}")
    for line in still_working(removed, env):
        print(f"  {line}")
    return 0


def _print_registration(r: Registration) -> None:
    for line in text_lines(r):
        print(line)


def add_commands(commands: Subparsers) -> None:
    """Add the registry commands to the ``certsas`` parser."""
    register = commands.add_parser(
        "register", help="register a client certificate",
        description="Register a client certificate (PEM or DER) and its scope. Refused, unless --force: "
                    "a CA certificate, an expired one, one whose extended key usage lacks "
                    "clientAuth, and (when TRUSTED_CA_CERTS is set) one that does not chain to "
                    "it. A certificate not yet valid is accepted (register a successor before "
                    "it starts). With a connection string both tables are created if missing; "
                    "with STORAGE_ACCOUNT_NAME none is (the Bicep makes them).",
        epilog=PRECEDENCE_HELP)
    register.add_argument("cert", metavar="CERT",
                          help="the client certificate file, PEM or DER (.pem, .crt, .cer, .der)")
    register.add_argument("--container", required=True, type=container_arg, metavar="NAME",
                          help="the container its tokens are for (required; 3-63 lowercase "
                               "letters, digits and hyphens)")
    register.add_argument("--permissions", default="rl", type=permissions_arg, metavar="LETTERS",
                          help="SAS permission letters it may be granted, from racwdl "
                               "(read, add, create, write, delete, list; default: rl)")
    register.add_argument("--max-ttl-minutes", default=DEFAULT_MAX_TTL_MINUTES,
                          type=max_ttl_minutes_arg, metavar="N", help=MAX_TTL_HELP)
    register.add_argument("--prefix", default="", type=prefix_arg, metavar="FOLDER/",
                          help="only blobs in this folder, ending in '/', e.g. tenant-a/ "
                               "(default: none, the whole container)")
    register.add_argument("--description", default="", metavar="TEXT",
                          help="free text for operators, e.g. who holds it (default: empty)")
    register.add_argument("--replace", action="store_true",
                          help="overwrite the registration of the same certificate if there "
                               "is one, so a script can run again (default: refuse, saying it "
                               "is registered)")
    register.add_argument("--allow-rotation", action="store_true",
                          help="let the holder register its successor itself (POST /api/rotate, "
                               "docs/grants-and-rotation.md; default: not allowed)")
    register.add_argument("--force", action="store_true",
                          help="register a certificate the app would refuse, see above "
                               "(default: refuse it, saying why)")
    register.set_defaults(func=cmd_register)

    listing = commands.add_parser("list", help="list registrations",
                                  description="List every registration, disabled ones too.")
    listing.add_argument("--expiring", type=days_arg, metavar="DAYS",
                         help=f"only those expiring within DAYS days (1 to {MAX_DAYS}) or "
                              "already expired, soonest first (default: all, by container "
                              "and subject)")
    listing.add_argument("--json", action="store_true",
                         help="one JSON array of objects, exact text, for scripts (default: "
                              "a table, control characters escaped)")
    listing.set_defaults(func=cmd_list)
    show = commands.add_parser("show", help="show one registration",
                               description="Show one registration.")
    show.add_argument("thumbprint", type=thumbprint_arg, metavar="THUMBPRINT",
                      help=THUMBPRINT_HELP)
    show.add_argument("--pem", action="store_true",
                      help="also print the certificate, PEM (default: only its fields)")
    show.add_argument("--json", action="store_true",
                      help="one JSON object, exact text, the certificate's PEM included, for "
                           "scripts (default: text, control characters escaped)")
    show.set_defaults(func=cmd_show)
    for name, func, description in (
            ("enable", _set_enabled(True), "Enable a registration."),
            ("disable", _set_enabled(False), DISABLE_HELP),
            ("remove", cmd_remove, "Remove a registration. Like disable, it takes effect "
                                   "within REGISTRY_CACHE_SECONDS; issued tokens stay valid.")):
        sub = commands.add_parser(name, help=f"{name} a registration", description=description)
        sub.add_argument("thumbprint", type=thumbprint_arg, metavar="THUMBPRINT",
                         help=THUMBPRINT_HELP)
        sub.set_defaults(func=func)
