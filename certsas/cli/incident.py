"""``certsas revoke-tokens``: make every token issued so far useless (SPEC §2b, §6).

A SAS cannot be revoked on its own; the key that signed it can. With user delegation
SAS (``STORAGE_ACCOUNT_NAME``) the command revokes every user delegation key of the
account through the management API, and only then records a new signing epoch in the
registry table, which every instance reads within ``REGISTRY_CACHE_SECONDS`` and then
signs with a new key. The other order would let an instance fetch a key that the
revocation then kills. Last, an audit record of its own kind says who did it and when.
With an account key there is nothing to revoke short of rotating the key itself: the
command says how and exits non-zero. docs/operations.md has the whole runbook.
"""

from __future__ import annotations

import argparse
import re
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from azure.core.exceptions import AzureError

from certsas.accounts import AccountKeyAccess
from certsas.audit import partition_key
from certsas.cli.admin import Subparsers
from certsas.cli.errors import CliError
from certsas.cli.management import ManagementApi, management_endpoint
from certsas.cli.settings import settings_env
from certsas.clock import Clock, iso, system_clock
from certsas.config import StorageSettings
from certsas.epoch import EntityUpserter, SigningEpoch, write_epoch
from certsas.storage import StorageClients

KIND = "revoke-tokens"
_SUBSCRIPTION = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
# Resource group names: letters, digits, '_', '-', '.', '(' and ')'; not ending in '.'.
_RESOURCE_GROUP = re.compile(r"[\w.()-]{0,89}[\w()-]")


class KeyRevoker(Protocol):
    def revoke_user_delegation_keys(self, subscription: str, resource_group: str,
                                    account: str) -> str | None: ...


class EntityCreator(Protocol):
    def create_entity(self, entity: dict[str, Any]) -> Any: ...


@dataclass(frozen=True)
class Target:
    subscription: str
    resource_group: str
    account: str


@dataclass(frozen=True)
class Revoked:
    """What was done: keys revoked at ``revoked_at`` (every earlier token is refused)."""

    target: Target
    revoked_at: datetime
    epoch: SigningEpoch
    operator: str | None


def revocation_entity(revoked: Revoked) -> dict[str, Any]:
    """The audit record: in the day's shard 00, valid whatever AUDIT_PARTITIONS is, and
    with ``IssuedAt`` so that ``certsas audit`` lists it among the token records."""
    return {
        "PartitionKey": partition_key(f"{revoked.revoked_at:%Y-%m-%d}", 0),
        "RowKey": uuid.uuid4().hex,
        "Kind": KIND,
        "IssuedAt": revoked.revoked_at,
        "RequestId": revoked.epoch.epoch_id,
        "Account": revoked.target.account,
        "Operator": revoked.operator or "",
        "Subscription": revoked.target.subscription,
        "ResourceGroup": revoked.target.resource_group,
    }


def revocation_json(entity: dict[str, Any]) -> dict[str, Any]:
    """A revocation record as ``certsas audit --json`` shows it."""
    return {"kind": KIND, "issued_at": iso(entity["IssuedAt"]),
            "request_id": entity.get("RequestId"), "account": entity.get("Account"),
            "operator": entity.get("Operator") or None}


def revocation_line(record: dict[str, Any]) -> str:
    """A revocation record as a line of ``certsas audit``, among the token lines."""
    return (f"{record['issued_at']:<20} REVOKE-TOKENS: every user delegation key of account "
            f"{record['account']} revoked by {record['operator'] or 'an unknown operator'} "
            f"(epoch {record['request_id']})")


def revoke(api: KeyRevoker, epochs: EntityUpserter, audit: EntityCreator, target: Target,
           *, clock: Clock = system_clock) -> Revoked:
    """Keys first, epoch second (never the other way round), audit last."""
    operator = api.revoke_user_delegation_keys(target.subscription, target.resource_group,
                                               target.account)
    now = clock().astimezone(UTC)
    revoked = Revoked(target, now, SigningEpoch.new(now), operator)
    try:
        write_epoch(epochs, revoked.epoch)
    except AzureError as exc:
        raise CliError(
            f"the keys of {target.account} were revoked at {iso(revoked.revoked_at)}, but the "
            f"signing epoch was not written ({type(exc).__name__}): instances keep signing "
            "with revoked keys until it is; run the command again") from None
    try:
        audit.create_entity(revocation_entity(revoked))
    except AzureError as exc:
        raise CliError(
            f"the keys of {target.account} were revoked at {iso(revoked.revoked_at)} and the "
            f"signing epoch written, but the audit record was not ({type(exc).__name__})"
        ) from None
    return revoked


def confirmed(question: str, *, yes: bool, interactive: bool,
              ask: Callable[[str], str] = input) -> bool:
    if yes:
        return True
    if not interactive:
        raise CliError("not a terminal, so there is no one to ask: add --yes to revoke")
    return ask(question).strip().lower() in ("y", "yes")


def account_tables(storage: StorageSettings) -> tuple[EntityUpserter, EntityCreator]:
    """The registry table (for the epoch) and the audit table, as the operator reaches them.
    A seam: Azurite takes no Entra ID token over http, so the end-to-end test of the
    command puts Azurite's tables here; everything else runs as it does against Azure."""
    clients = StorageClients(storage)
    return clients.registry_table(), clients.audit_table()


def cmd_revoke_tokens(args: argparse.Namespace) -> int:
    env = settings_env()
    storage = StorageSettings.from_env(env)
    access = storage.access
    if isinstance(access, AccountKeyAccess):
        raise CliError(
            f"nothing revoked: with STORAGE_CONNECTION_STRING tokens are signed with the account "
            "key, and only rotating it invalidates them: `az storage account keys renew "
            f"--account-name {access.account_name} --resource-group {args.resource_group} --key "
            "key1` (the key the connection string holds; key2 if it holds that one), then put "
            "the new connection string in the app setting STORAGE_CONNECTION_STRING")
    endpoint = management_endpoint(env.get("AZURE_RESOURCE_MANAGER_URL"))
    target = Target(args.subscription, args.resource_group, access.account_name)
    question = (f"Revoke every user delegation key of storage account {target.account} "
                f"(resource group {target.resource_group}, subscription {target.subscription})? "
                "Every token issued so far stops working. [y/N] ")
    if not confirmed(question, yes=args.yes, interactive=sys.stdin.isatty()):
        print("nothing revoked")
        return 1
    # Imported here, not at the top: the other commands never pay for azure.identity.
    from azure.identity import DefaultAzureCredential

    registry, audit = account_tables(storage)
    revoked = revoke(ManagementApi(endpoint, DefaultAzureCredential()), registry, audit, target)
    print(f"revoked every user delegation key of storage account {target.account} at "
          f"{iso(revoked.revoked_at)}: Storage refuses every token signed before then")
    print(f"wrote signing epoch {revoked.epoch.epoch_id} to table {storage.cert_table}: "
          "each instance signs with a new key within REGISTRY_CACHE_SECONDS")
    print(f"audit record written (operator {revoked.operator or 'unknown'}); "
          "next: watch clients come back (docs/operations.md)")
    return 0


def subscription_arg(value: str) -> str:
    if not _SUBSCRIPTION.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value[:40]!r} is not a subscription id (a GUID)")
    return value.lower()


def resource_group_arg(value: str) -> str:
    if not _RESOURCE_GROUP.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value[:40]!r} is not a resource group name")
    return value


def add_commands(commands: Subparsers) -> None:
    """Add ``revoke-tokens`` to the ``certsas`` parser."""
    revoke_tokens = commands.add_parser(
        "revoke-tokens", help="make every token issued so far useless (incident response)",
        description="Revoke every user delegation key of the storage account (the management "
                    "API's revokeUserDelegationKeys, as you: you need "
                    "Microsoft.Storage/storageAccounts/revokeUserDelegationKeys/action), then "
                    "record a new signing epoch so every instance fetches a new key. Disable "
                    "the leaked certificate first. AZURE_RESOURCE_MANAGER_URL selects another "
                    "cloud.")
    revoke_tokens.add_argument("--subscription", required=True, type=subscription_arg,
                               metavar="ID", help="the storage account's subscription id")
    revoke_tokens.add_argument("--resource-group", required=True, type=resource_group_arg,
                               metavar="NAME", help="the storage account's resource group")
    revoke_tokens.add_argument("--yes", action="store_true",
                               help="do not ask (required when stdin is not a terminal)")
    revoke_tokens.set_defaults(func=cmd_revoke_tokens)
