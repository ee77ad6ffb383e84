"""``certsas audit``: the issued-token records of a time range, oldest first (SPEC §5, §6).

A range is read with one query over the day partitions it touches,
``PartitionKey ge 'FIRST-DAY' and PartitionKey lt 'DAY-AFTER-THE-LAST'``: the plain
``YYYY-MM-DD`` keys of earlier versions and today's ``YYYY-MM-DD.NN`` both sort inside
it ('2026-11-01' < '2026-11-01.00' < '2026-11-01.99' < '2026-11-02'), and the service
reads only those partitions, never the whole table. Thumbprint and container are
filters sent with the query as parameters (the SDK quotes them), never pasted into it.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient

from certsas.cli.admin import Subparsers, registry_from_env
from certsas.cli.args import container_arg, thumbprint_arg
from certsas.cli.errors import CliError
from certsas.cli.incident import KIND as REVOKE_KIND
from certsas.cli.incident import revocation_json, revocation_line
from certsas.cli.settings import settings_env
from certsas.cli.text import printable
from certsas.clock import iso, system_clock
from certsas.config import StorageSettings
from certsas.storage import StorageClients

_AGO = re.compile(r"(\d{1,6})([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
# Edm.DateTime's range (Microsoft, "Understanding the Table service data model"), less the
# last day, whose day-after bounds a query's partition keys.
EARLIEST = datetime(1601, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, tzinfo=UTC)

# Only what the listing shows: no need to move more over the wire.
COLUMNS = ("IssuedAt", "RequestId", "Thumbprint", "Subject", "Container", "Blob", "Permissions",
           "ExpiresOn", "ClientAddress", "SignatureSha256", "GrantPrefix",
           "Kind", "Successor",  # Kind: token (or missing), rotation, revoke-tokens
           "Account", "Operator")  # records of revoke-tokens


@dataclass(frozen=True)
class When:
    """A ``--since``/``--until`` value: a time ago (``90m``, ``24h``, ``7d``), a UTC day
    (its midnight) or an ISO 8601 instant (UTC unless it says otherwise)."""

    ago: timedelta | None = None
    at: datetime | None = None

    def resolve(self, now: datetime) -> datetime:
        """The instant meant, or ValueError when Table storage holds no such time."""
        try:
            at = self.at if self.at is not None else now - (self.ago or timedelta(0))
        except OverflowError:  # ``999999d`` ago is before the year 1
            raise ValueError(f"that is before {iso(EARLIEST)}, the earliest time Table "
                             "storage holds") from None
        if not EARLIEST <= at <= LATEST:
            raise ValueError(f"{iso(at)} is outside what Table storage holds "
                             f"({iso(EARLIEST)} to {iso(LATEST)})")
        return at


def when_arg(value: str) -> When:
    text = value.strip()
    ago = _AGO.fullmatch(text)
    if ago:
        return When(ago=timedelta(**{_UNITS[ago[2]]: int(ago[1])}))
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value[:40]!r} is not a time: use 24h, 90m, 7d, 2026-11-01 or "
            "2026-11-01T12:00:00Z") from None
    try:
        return When(at=at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC))
    except OverflowError:  # 0001-01-01T00:00+01:00 is in the year 0
        raise argparse.ArgumentTypeError(f"{value[:40]!r} is outside the calendar") from None


@dataclass(frozen=True)
class AuditQuery:
    """A Table query: the OData filter with ``@names`` and the values the SDK puts there."""

    filter: str
    parameters: dict[str, Any]


def build_query(since: datetime, until: datetime, *, thumbprint: str | None = None,
                container: str | None = None) -> AuditQuery:
    """Records issued in [since, until): the partitions of the days it touches, then the
    exact instants, thumbprint and container, all server-side."""
    first_day = since.astimezone(UTC).date()
    # The last day holding an instant before ``until``; its next day bounds the keys.
    last_day = (until.astimezone(UTC) - timedelta(microseconds=1)).date()
    clauses = ["PartitionKey ge @first_day", "PartitionKey lt @day_after",
               "IssuedAt ge @since", "IssuedAt lt @until"]
    parameters: dict[str, Any] = {
        "first_day": first_day.isoformat(),
        "day_after": (last_day + timedelta(days=1)).isoformat(),
        "since": since, "until": until,
    }
    if thumbprint is not None:
        clauses.append("Thumbprint eq @thumbprint")
        parameters["thumbprint"] = thumbprint
    if container is not None:
        clauses.append("Container eq @container")
        parameters["container"] = container
    return AuditQuery(" and ".join(clauses), parameters)


def fetch(table: TableClient, query: AuditQuery, **request: Any) -> list[dict[str, Any]]:
    """Every matching record, oldest first (the service returns them in key order:
    shard by shard, not by time). ``request`` goes to the SDK (e.g. a request hook)."""
    entities = table.query_entities(query.filter, parameters=query.parameters,
                                    select=[*COLUMNS, "RowKey"], **request)
    return sorted((dict(e) for e in entities), key=lambda e: (e["IssuedAt"], e["RowKey"]))


def as_json(entity: dict[str, Any]) -> dict[str, Any]:
    if entity.get("Kind") == REVOKE_KIND:
        return revocation_json(entity)
    return {
        "kind": entity.get("Kind") or "token",  # or "rotation" (SPEC §4a)
        "issued_at": iso(entity["IssuedAt"]),
        "request_id": entity.get("RequestId"),
        "thumbprint": entity.get("Thumbprint"),
        "subject": entity.get("Subject"),
        "container": entity.get("Container"),
        "grant_prefix": entity.get("GrantPrefix") or None,  # the grant used (SPEC §4)
        "blob": entity.get("Blob") or None,
        "permissions": entity.get("Permissions"),
        "expires_on": iso(entity["ExpiresOn"]) if entity.get("ExpiresOn") else None,
        "client_address": entity.get("ClientAddress") or None,
        "signature_sha256": entity.get("SignatureSha256"),
        "successor": entity.get("Successor") or None,
    }


def table_lines(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    yield (f"{'ISSUED':<20} {'THUMBPRINT (SHA-256)':<64} {'CONTAINER':<20} {'GRANT':<20} "
           f"{'BLOB':<24} "
           f"{'PERM':<5} {'EXPIRES':<20} {'REQUEST':<36} SUBJECT")
    for record in records:
        # A record is what the table holds: whoever could write to it chose these strings.
        r = {name: printable(str(value)) if value else "" for name, value in record.items()}
        if record.get("kind") == REVOKE_KIND:
            yield revocation_line(r)
            continue
        yield (f"{r['issued_at']:<20} {r['thumbprint']:<64} {r['container']:<20} "
               f"{_grant(r):<20} {_blob(r):<24} {r['permissions']:<5} "
               f"{r['expires_on']:<20} {r['request_id']:<36} {r['subject']}")


def _grant(record: dict[str, Any]) -> str:
    """The grant that allowed a token (its prefix, or the container's); for a rotation,
    the successor it registered."""
    if record.get("kind") == "rotation":
        return f"rotated to {str(record.get('successor'))[:9]}"
    return str(record.get("grant_prefix") or "(container)")


def _blob(record: dict[str, Any]) -> str:
    if record.get("kind") == "rotation":
        return ""
    return str(record.get("blob") or "(container)")


def cmd_audit(args: argparse.Namespace) -> int:
    now = system_clock()
    try:
        since, until = args.since.resolve(now), (args.until or When()).resolve(now)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if until <= since:
        raise CliError(f"--until ({iso(until)}) is not after --since ({iso(since)})")
    env = settings_env()
    thumbprint = args.thumbprint
    if thumbprint is not None and len(thumbprint) == 40:
        # The records hold the SHA-256; the portal's SHA-1 is known only to the registry.
        registration = registry_from_env(env).find(thumbprint)
        if registration is None:
            raise CliError(f"SHA-1 {thumbprint} is not registered (any more): "
                           "give the SHA-256 thumbprint")
        thumbprint = registration.thumbprint
    settings = StorageSettings.from_env(env)
    table = StorageClients(settings).audit_table()
    query = build_query(since, until, thumbprint=thumbprint, container=args.container)
    try:
        records = [as_json(e) for e in fetch(table, query)]
    except ResourceNotFoundError:
        raise CliError(f"audit table {settings.audit_table} does not exist") from None
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    span = f"from {iso(since)} to {iso(until)}"
    if not records:
        print(f"no tokens issued {span}")
        return 0
    for line in table_lines(records):
        print(line)
    rotations = sum(1 for r in records if r["kind"] == "rotation")
    print(f"{len(records) - rotations} token(s) issued {span}"
          + (f", {rotations} rotation(s)" if rotations else ""))
    return 0


def add_commands(commands: Subparsers) -> None:
    """Add ``audit`` to the ``certsas`` parser."""
    audit = commands.add_parser(
        "audit", help="list issued tokens",
        description="List the issued-token records of a time range, oldest first. A time is "
                    "24h, 90m or 7d ago, a UTC day (its midnight: --until 2026-11-02 ends "
                    "with 1 November) or an ISO 8601 instant.")
    audit.add_argument("--since", type=when_arg, default=When(ago=timedelta(hours=24)),
                       metavar="TIME", help="start, included (default: 24h, a day ago)")
    audit.add_argument("--until", type=when_arg, default=None, metavar="TIME",
                       help="end, not included (default: now)")
    audit.add_argument("--thumbprint", type=thumbprint_arg, metavar="THUMBPRINT",
                       help="only this certificate's tokens: its SHA-256, or the SHA-1 (what "
                            "the Azure portal shows) of one still registered; any case, colons "
                            "allowed (default: every certificate)")
    audit.add_argument("--container", type=container_arg, metavar="NAME",
                       help="only tokens for this container (default: every container)")
    audit.add_argument("--json", action="store_true",
                       help="one JSON array of objects, exact text, for scripts (default: a "
                            "table, control characters escaped)")
    audit.set_defaults(func=cmd_audit)
