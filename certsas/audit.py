"""Audit (SPEC §5): one structured log line per decision, one table record per token.

The log line and the record hold who, what and until when; never the token, its
signature or the certificate. The record keeps a SHA-256 of the signature so an
operator can tie a token seen elsewhere back to its issuance.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from azure.core.exceptions import AzureError
from azure.data.tables import TableClient

from certsas.errors import DependencyUnavailable

logger = logging.getLogger("certsas.audit")


@dataclass(frozen=True)
class AuditRecord:
    time: datetime
    request_id: str
    thumbprint: str
    subject: str
    container: str
    blob: str | None
    permissions: str
    expires_on: datetime
    client_address: str | None
    signature_sha256: str


class AuditSink(Protocol):
    """Where token records go; must raise rather than lose one."""

    def record(self, record: AuditRecord) -> None: ...


class TableAuditSink:
    """Records in an Azure Table: PartitionKey is the UTC day, RowKey a fresh UUID."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def record(self, record: AuditRecord) -> None:
        entity = {
            "PartitionKey": f"{record.time:%Y-%m-%d}",
            "RowKey": uuid.uuid4().hex,
            "IssuedAt": record.time,
            "RequestId": record.request_id,
            "Thumbprint": record.thumbprint,
            "Subject": record.subject,
            "Container": record.container,
            "Blob": record.blob or "",
            "Permissions": record.permissions,
            "ExpiresOn": record.expires_on,
            "ClientAddress": record.client_address or "",
            "SignatureSha256": record.signature_sha256,
        }
        try:
            self._table.create_entity(entity)
        except AzureError as exc:
            raise DependencyUnavailable(f"audit record not written: {type(exc).__name__}") from None


@dataclass(frozen=True)
class Decision:
    """One line of the decision log."""

    request_id: str
    outcome: str  # "issued" or "refused"
    thumbprint: str | None = None
    subject: str | None = None
    error: str | None = None
    reason: str | None = None
    container: str | None = None
    blob: str | None = None
    permissions: str | None = None
    expires_on: datetime | None = None
    revocation: str | None = None
    client_address: str | None = None


def log_decision(decision: Decision) -> None:
    fields = {key: value for key, value in decision.__dict__.items() if value is not None}
    if decision.expires_on is not None:
        fields["expires_on"] = f"{decision.expires_on:%Y-%m-%dT%H:%M:%SZ}"
    level = logging.INFO if decision.outcome == "issued" else logging.WARNING
    logger.log(level, "certsas decision %s", json.dumps(fields, sort_keys=True),
               extra={"certsas": fields})
