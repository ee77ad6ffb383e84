"""``certsas token`` and ``certsas rotate``: the client side, on :mod:`certsas.client` (SPEC §6).

Exit codes: 0 done, 1 a local problem (files, network, TLS), 2 bad arguments, 3 certsas
refused (its status and error code are printed); with ``--exec``, the command's own status.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TypeAlias

from certsas.cli.args import container_arg, permissions_arg, positive_int
from certsas.cli.errors import CliError
from certsas.client import CertSas, CertSasError, Refused, Token, rotate
from certsas.client.identity import Password

EXIT_REFUSED = 3
# What a shell answers for a command it cannot find or cannot run.
EXIT_NOT_FOUND, EXIT_NOT_EXECUTABLE = 127, 126
URL_VARIABLE, TOKEN_VARIABLE = "CERTSAS_SAS_URL", "CERTSAS_SAS_TOKEN"
PASSWORD_VARIABLE, NEW_PASSWORD_VARIABLE = "CERTSAS_KEY_PASSWORD", "CERTSAS_NEW_KEY_PASSWORD"
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

FILES_HELP = textwrap.fill(
    "certificate files: PEM (leaf first; may hold the key too), DER, or PKCS#12 (.pfx/.p12, "
    "holding the key: no --key); keys PEM or DER, encrypted or not. A password is read from "
    "the variable named by --password-env, else asked for on a terminal.", 80)


def add_commands(commands: Subparsers) -> None:
    _add_token(commands)
    _add_rotate(commands)


def _identity_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cert", required=True, type=Path, metavar="FILE",
                        help="client certificate: PEM, DER or PKCS#12 (.pfx/.p12)")
    parser.add_argument("--key", type=Path, metavar="FILE",
                        help="its private key, PEM or DER (not with a PKCS#12 or a PEM that "
                             "holds the key)")
    parser.add_argument("--ca", type=Path, metavar="FILE",
                        help="PEM bundle trusted for the server's TLS certificate "
                             "(default: the system's)")
    parser.add_argument("--password-env", default=PASSWORD_VARIABLE, metavar="VAR",
                        help=f"variable holding the password of an encrypted key or PKCS#12 "
                             f"(default: {PASSWORD_VARIABLE}; unset: asked on a terminal)")
    parser.add_argument("--timeout", type=float, default=15.0, metavar="SECONDS",
                        help="for each call to certsas (default: 15)")


# --- token ---------------------------------------------------------------------------------


def _add_token(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "token", help="get a SAS token over mutual TLS (the client side)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s --url URL --cert C [--key K] [options] [--exec -- CMD [ARGS...]]",
        description="POST to the token endpoint with a client certificate and print the answer,\n"
                    "or run a command with it.\n\n" + FILES_HELP,
        epilog=(
            "exit codes: 0 token issued, 1 local error (files, network, TLS), 2 bad arguments,\n"
            "            3 refused by the service (its error code is printed);\n"
            "            with --exec, the command's own exit status\n\n"
            "examples:\n"
            "  certsas token --url https://localhost:7443/api/token --cert .dev/pki/client.pem \\\n"
            "       --key .dev/pki/client.key --ca .dev/pki/trusted-ca-certs.pem\n"
            "  eval \"$(certsas token --url \"$URL\" --cert client.pfx --format env)\"\n"
            "  certsas token --url \"$URL\" --cert client.pfx --exec -- \\\n"
            "       sh -c 'azcopy copy ./out \"$CERTSAS_SAS_URL\" --recursive'"))
    parser.add_argument("--url", required=True, help="token endpoint, e.g. https://host/api/token")
    _identity_arguments(parser)
    parser.add_argument("--container", type=container_arg, metavar="NAME",
                        help="container to scope the token to (default: the registration's "
                             "only one)")
    parser.add_argument("--blob", metavar="NAME", help="scope the token to this one blob")
    parser.add_argument("--permissions", type=permissions_arg, metavar="LETTERS",
                        help="SAS letters from racwdl (default: all the grant allows)")
    parser.add_argument("--ttl-minutes", type=positive_int, metavar="N",
                        help="lifetime (default: the service's SAS_DEFAULT_TTL_MINUTES)")
    parser.add_argument("--format", choices=("json", "url", "env"), default="json",
                        help=f"json: the answer (default); url: the SAS URL alone; env: "
                             f"`export {URL_VARIABLE}=...` and `export {TOKEN_VARIABLE}=...` "
                             f"lines for eval")
    parser.add_argument("--url-only", dest="format", action="store_const", const="url",
                        help="the same as --format url")
    parser.add_argument("--exec", action="store_true",
                        help=f"run CMD (after --) with {URL_VARIABLE} and {TOKEN_VARIABLE} set, "
                             f"and exit with its status")
    parser.add_argument("run", nargs="*", metavar="CMD", help=argparse.SUPPRESS)
    parser.set_defaults(func=cmd_token)


def cmd_token(args: argparse.Namespace) -> int:
    if args.run and not args.exec:
        raise CliError(f"unexpected argument {args.run[0]!r} (a command to run follows "
                       f"--exec --)")
    if args.exec and not args.run:
        raise CliError("--exec needs a command: --exec -- CMD [ARGS...]")
    try:
        with CertSas(args.url, cert=args.cert, key=args.key, ca=args.ca, timeout=args.timeout,
                     password=password_source(args.password_env)) as sas:
            token = sas.token(container=args.container, blob=args.blob,
                              permissions=args.permissions, ttl_minutes=args.ttl_minutes)
    except Refused as refused:
        return _refused("token", refused)
    except CertSasError as exc:
        raise CliError(str(exc)) from None
    if args.exec:
        return run_with(token, args.run)
    print(render(token, args.format))
    return 0


def render(token: Token, form: str) -> str:
    if form == "url":
        return token.url
    if form == "env":
        return (f"export {URL_VARIABLE}={shlex.quote(token.url)}\n"
                f"export {TOKEN_VARIABLE}={shlex.quote(token.token)}")
    return json.dumps({
        "token": token.token, "url": token.url,
        "expires_on": f"{token.expires_on:%Y-%m-%dT%H:%M:%SZ}", "permissions": token.permissions,
        "resource": token.resource, "container": token.container, "blob": token.blob,
    }, indent=2)


def run_with(token: Token, command: list[str]) -> int:
    """Run ``command`` with the token in its environment; its exit status, as a shell gives it."""
    env = {**os.environ, URL_VARIABLE: token.url, TOKEN_VARIABLE: token.token}
    try:
        status = subprocess.run(command, env=env, check=False).returncode
    except FileNotFoundError:
        print(f"certsas token: error: {command[0]}: command not found", file=sys.stderr)
        return EXIT_NOT_FOUND
    except PermissionError:
        print(f"certsas token: error: {command[0]}: permission denied", file=sys.stderr)
        return EXIT_NOT_EXECUTABLE
    return 128 - status if status < 0 else status  # killed by signal N: 128 + N


def password_source(variable: str) -> Password:
    """The password from ``variable``, else asked on a terminal, else a one-line error."""

    def ask(path: str) -> str:
        value = os.environ.get(variable)
        if value is not None:
            return value
        if sys.stdin.isatty():
            return getpass.getpass(f"password for {path}: ")
        raise CliError(f"{path} is encrypted: set {variable} to its password, or run on a "
                       f"terminal to be asked")

    return ask


def _refused(command: str, refused: Refused) -> int:
    print(f"certsas {command}: refused: {refused}", file=sys.stderr)
    return EXIT_REFUSED


# --- rotate --------------------------------------------------------------------------------


def _add_rotate(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "rotate", help="register the successor of this client certificate yourself (SPEC §4a)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "POST the successor certificate to certsas's rotate endpoint over mutual TLS with\n"
            "the current one, with a proof that you hold both keys: a signature with the new\n"
            "key over certsas-rotate:<SHA-256 of current>:<SHA-256 of new>. The registration\n"
            "must allow rotation (certsas rotation THUMBPRINT allow). The current certificate\n"
            "keeps working until the operator disables it or it expires.\n\n" + FILES_HELP),
        epilog=(
            "exit codes: 0 registered, 1 local error (files, network, TLS), 2 bad arguments,\n"
            "            3 refused by the service (its error code is printed)\n\n"
            "example:\n"
            "  certsas rotate --url https://app.azurewebsites.net/api/rotate --cert client.pem \\\n"
            "       --key client.key --new-cert client-2027.pem --new-key client-2027.key"))
    parser.add_argument("--url", required=True,
                        help="rotate endpoint, e.g. https://host/api/rotate")
    _identity_arguments(parser)
    parser.add_argument("--new-cert", required=True, type=Path, metavar="FILE",
                        help="the successor certificate: PEM, DER or PKCS#12")
    parser.add_argument("--new-key", type=Path, metavar="FILE", help="its private key, PEM or DER")
    parser.add_argument("--new-password-env", default=NEW_PASSWORD_VARIABLE, metavar="VAR",
                        help=f"variable holding the successor's key password (default: "
                             f"{NEW_PASSWORD_VARIABLE}; unset: asked on a terminal)")
    parser.set_defaults(func=cmd_rotate)


def cmd_rotate(args: argparse.Namespace) -> int:
    try:
        rotated = rotate(args.url, cert=args.cert, key=args.key, new_cert=args.new_cert,
                         new_key=args.new_key, ca=args.ca, timeout=args.timeout,
                         password=password_source(args.password_env),
                         new_password=password_source(args.new_password_env))
    except Refused as refused:
        return _refused("rotate", refused)
    except CertSasError as exc:
        raise CliError(str(exc)) from None
    print(f"registered {rotated.thumbprint}")
    print(f"  not after     {rotated.not_after}")
    print(f"  rotated from  {rotated.rotated_from} (still registered: it works until it is "
          f"disabled or expires)")
    return 0
