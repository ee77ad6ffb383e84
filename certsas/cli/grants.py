"""``grant``, ``ungrant`` and ``rotation``: change what a registration allows (SPEC §4, §6).

Each reads the registration, changes it and writes it back whole, in the current entity
form (an earlier version's single-grant entity is rewritten as one grant plus the change).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import replace

from certsas.cli.admin import Subparsers, registry_from_env
from certsas.cli.args import (
    DEFAULT_MAX_TTL_MINUTES,
    MAX_TTL_HELP,
    THUMBPRINT_HELP,
    container_arg,
    max_ttl_minutes_arg,
    permissions_arg,
    prefix_arg,
    thumbprint_arg,
)
from certsas.cli.errors import CliError
from certsas.cli.settings import settings_env
from certsas.cli.views import cap_note, grant_line
from certsas.grants import AccessGrant, checked_grants
from certsas.registration import Registration


def _change(thumbprint: str, change: Callable[[Registration], Registration],
            env: Mapping[str, str] | None = None) -> Registration:
    registry = registry_from_env(settings_env() if env is None else env)
    current = registry.find(thumbprint)
    if current is None:
        raise CliError(f"{thumbprint} is not registered")
    changed = change(current)
    try:
        registry.put(changed)
    except ValueError as exc:  # the grants do not fit in the entity
        raise CliError(str(exc)) from None
    return changed


def with_grant(r: Registration, grant: AccessGrant) -> Registration:
    """``r`` with ``grant`` added, or replacing the grant of the same container and prefix."""
    kept = [g for g in r.grants if g.key != grant.key]
    try:
        return replace(r, grants=checked_grants([*kept, grant]))
    except ValueError as exc:
        raise CliError(str(exc)) from None


def without_grant(r: Registration, container: str, prefix: str) -> Registration:
    kept = tuple(g for g in r.grants if g.key != (container, prefix))
    if len(kept) == len(r.grants):
        where = f"{container}/{prefix}" if prefix else container
        raise CliError(f"{r.thumbprint} has no grant on {where}")
    if not kept:
        raise CliError(f"that is the last grant of {r.thumbprint}: `certsas disable` or "
                       "`certsas remove` the registration instead")
    return replace(r, grants=kept)


def cmd_grant(args: argparse.Namespace) -> int:
    grant = AccessGrant.of(args.container, prefix=args.prefix, permissions=args.permissions,
                           max_ttl_minutes=args.max_ttl_minutes)
    replaced: list[bool] = []

    def change(r: Registration) -> Registration:
        replaced.append(any(g.key == grant.key for g in r.grants))
        return with_grant(r, grant)

    env = settings_env()
    changed = _change(args.thumbprint, change, env)
    print(f"{'changed' if replaced[0] else 'granted'} {grant_line(grant).rstrip()} "
          f"for {changed.thumbprint}")
    _print_grants(changed)
    # As register says it (issue 22 item 3): a cap above the settings' is not what tokens get.
    for line in cap_note(changed, env):
        print(line)
    return 0


def cmd_ungrant(args: argparse.Namespace) -> int:
    changed = _change(args.thumbprint,
                      lambda r: without_grant(r, args.container, args.prefix))
    where = f"{args.container}/{args.prefix}" if args.prefix else args.container
    print(f"removed the grant on {where} from {changed.thumbprint}")
    _print_grants(changed)
    return 0


def cmd_rotation(args: argparse.Namespace) -> int:
    allow = args.setting == "allow"
    changed = _change(args.thumbprint, lambda r: replace(r, allow_rotation=allow))
    print(f"rotation {'allowed' if allow else 'not allowed'} for {changed.thumbprint}")
    return 0


def _print_grants(r: Registration) -> None:
    for grant in r.grants:
        print(f"  {grant_line(grant)}")


def add_commands(commands: Subparsers) -> None:
    """Add ``grant``, ``ungrant`` and ``rotation`` to the ``certsas`` parser."""
    grant = commands.add_parser(
        "grant", help="add or change a grant of a registration",
        description="Let a registered certificate reach a container, or only the blobs under "
                    "a prefix in it. A grant for the same container and prefix is replaced. "
                    "A request is served by one grant: the one on its container with the "
                    "longest prefix that covers its blob; a container-scoped token needs a "
                    "grant without a prefix.")
    grant.add_argument("thumbprint", type=thumbprint_arg, help=THUMBPRINT_HELP)
    grant.add_argument("--container", required=True, type=container_arg, metavar="NAME",
                       help="the container the grant is on (required)")
    grant.add_argument("--prefix", default="", type=prefix_arg, metavar="FOLDER/",
                       help="only blobs in this folder, ending in '/', e.g. inbox/ "
                            "(default: none, the whole container)")
    grant.add_argument("--permissions", default="rl", type=permissions_arg, metavar="LETTERS",
                       help="SAS permission letters from racwdl (default: rl)")
    grant.add_argument("--max-ttl-minutes", default=DEFAULT_MAX_TTL_MINUTES,
                       type=max_ttl_minutes_arg, metavar="N", help=MAX_TTL_HELP)
    grant.set_defaults(func=cmd_grant)

    ungrant = commands.add_parser(
        "ungrant", help="remove a grant of a registration",
        description="Remove the grant on a container (and prefix). The last grant cannot be "
                    "removed: disable or remove the registration instead.")
    ungrant.add_argument("thumbprint", type=thumbprint_arg, help=THUMBPRINT_HELP)
    ungrant.add_argument("--container", required=True, type=container_arg, metavar="NAME",
                         help="the container of the grant to remove (required)")
    ungrant.add_argument("--prefix", default="", type=prefix_arg, metavar="FOLDER/",
                         help="the grant's prefix (default: none, the whole-container grant)")
    ungrant.set_defaults(func=cmd_ungrant)

    rotation = commands.add_parser(
        "rotation", help="allow or deny rotation by the certificate's holder",
        description="Whether the holder of this registered certificate may register its own "
                    "successor with POST /api/rotate (docs/grants-and-rotation.md says when "
                    "not to allow it).")
    rotation.add_argument("thumbprint", type=thumbprint_arg, help=THUMBPRINT_HELP)
    rotation.add_argument("setting", choices=("allow", "deny"),
                          help="allow: its holder may register a successor; deny: only the "
                               "operator registers certificates (the default for a new one)")
    rotation.set_defaults(func=cmd_rotation)
