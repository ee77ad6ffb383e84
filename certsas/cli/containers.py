"""``certsas create-container NAME``: the blob container a registration's tokens are for.

For local work (Azurite) and scripts that must be safe to run twice: a container that
already exists is what was asked for, not an error, so the README's local block can be
pasted again. In Azure the Bicep or the portal usually makes containers; this works
there too for an identity with a data role on blobs.
"""

from __future__ import annotations

import argparse

from azure.core.exceptions import AzureError, ResourceExistsError

from certsas.cli import failures
from certsas.cli.admin import Subparsers
from certsas.cli.args import container_arg
from certsas.cli.errors import CliError
from certsas.cli.settings import PRECEDENCE_HELP, settings_env
from certsas.config import StorageSettings
from certsas.storage import StorageClients


def add_commands(commands: Subparsers) -> None:
    """Add ``create-container`` to the ``certsas`` parser."""
    parser = commands.add_parser(
        "create-container", help="create a blob container if it does not exist",
        description="Create a blob container in the configured storage account, unless it "
                    "exists already (then say so and succeed: safe to run again).",
        epilog=PRECEDENCE_HELP)
    parser.add_argument("container", type=container_arg, metavar="NAME",
                        help="the container (3-63 lowercase letters, digits and hyphens)")
    parser.set_defaults(func=cmd_create_container)


def cmd_create_container(args: argparse.Namespace) -> int:
    settings = StorageSettings.from_env(settings_env())
    endpoint = settings.access.blob_endpoint
    try:
        StorageClients(settings).blob_service().create_container(args.container)
    except ResourceExistsError as exc:
        # 409 also means ContainerBeingDeleted: that one is not "done".
        if failures.error_code(exc) not in (None, "ContainerAlreadyExists"):
            raise CliError(failures.describe(exc, endpoint, "blob")) from None
        print(f"container {args.container} exists already at {endpoint}")
        return 0
    except AzureError as exc:
        raise CliError(failures.describe(exc, endpoint, "blob")) from None
    print(f"created container {args.container} at {endpoint}")
    return 0
