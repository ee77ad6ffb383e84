"""``certsas`` / ``python -m certsas``: the operator's and the developer's command line (SPEC §6).

Every command prints what it did; bad input is one line on stderr and a non-zero exit.
The registry commands are in :mod:`certsas.cli.admin`, ``audit`` in
:mod:`certsas.cli.audit`; ``dev-pki``, ``serve`` and ``token`` in :mod:`certsas.cli.dev`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from collections.abc import Sequence

from azure.core.exceptions import AzureError, ServiceRequestError, ServiceResponseError

from certsas import __version__
from certsas.cli import admin, audit, dev, failures
from certsas.cli.errors import CliError
from certsas.cli.settings import PRECEDENCE_HELP, settings_env
from certsas.config import StorageSettings
from certsas.errors import CertsasError, ConfigurationError, DependencyUnavailable, Refusal

# What a shell reports for a command killed by SIGPIPE (128 + 13): `certsas list | head`
# ends the way `yes | head` does, not with a traceback.
EXIT_BROKEN_PIPE = 141


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="certsas", description="Trade a client certificate for a scoped Azure Blob SAS token.",
        epilog=PRECEDENCE_HELP,
    )
    parser.add_argument("--version", action="version", version=f"certsas {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    admin.add_commands(commands)
    audit.add_commands(commands)
    dev.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            code = _run(argv)
        finally:  # argparse's --help and --version end in SystemExit: flush for them too
            sys.stdout.flush()  # here, so a closed pipe is seen while we can still handle it
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except (CliError, ConfigurationError) as exc:
        _fail(args.command, str(exc))
    except Refusal as exc:  # the registry's own reads: table missing, storage unreachable
        _fail(args.command, _refusal_line(exc))
    except AzureError as exc:
        _fail(args.command, failures.describe(exc, _table_endpoint()))
    except KeyboardInterrupt:
        print(f"certsas {args.command}: interrupted", file=sys.stderr)
        return 130
    return 1


def _fail(command: str, message: str) -> None:
    print(f"certsas {command}: error: {message}", file=sys.stderr)


def _refusal_line(exc: Refusal) -> str:
    """A storage failure the registry turned into a refusal (its detail names no endpoint)."""
    cause = exc.__context__  # kept by ``raise ... from None``, only hidden from tracebacks
    if isinstance(cause, ServiceRequestError | ServiceResponseError):
        return failures.describe(cause, _table_endpoint())
    if isinstance(exc, DependencyUnavailable):
        return f"{exc.detail} (table storage at {_table_endpoint()})"
    return exc.detail


def _table_endpoint() -> str:
    """The endpoint the failed call went to: the settings loaded fine a moment ago."""
    try:
        return StorageSettings.from_env(settings_env()).access.table_endpoint
    except CertsasError:
        return "(the configured account)"


def _silence_stdout() -> None:
    """Python's documented recipe: point stdout at devnull so that the interpreter's own
    flush at exit does not raise again (https://docs.python.org/3/library/signal.html,
    "Note on SIGPIPE")."""
    with contextlib.suppress(AttributeError, OSError, io.UnsupportedOperation, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
