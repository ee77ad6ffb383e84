"""``certsas`` / ``python -m certsas``: the operator's and the developer's command line (SPEC §6).

Every command prints what it did; bad input is one line on stderr and a non-zero exit.
The registry commands are in :mod:`certsas.cli.admin`, ``audit`` in
:mod:`certsas.cli.audit`; ``dev-pki``, ``serve`` and ``token`` in :mod:`certsas.cli.dev`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from azure.core.exceptions import AzureError

from certsas import __version__
from certsas.cli import admin, audit, dev
from certsas.cli.errors import CliError
from certsas.errors import ConfigurationError, Refusal


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="certsas", description="Trade a client certificate for a scoped Azure Blob SAS token.",
    )
    parser.add_argument("--version", action="version", version=f"certsas {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    admin.add_commands(commands)
    audit.add_commands(commands)
    dev.add_commands(commands)
    return parser


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
