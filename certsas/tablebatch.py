"""The entity-group transaction on the wire: the ``multipart/mixed`` request the lean Table
client sends, and a fail-closed reading of the reply.

The reply to a transaction that stored everything is 202 with one part per operation,
each ``HTTP/1.1 201`` or ``HTTP/1.1 204``; one that failed is 202 with one part for the
operation that failed ("Performing entity group transactions",
https://learn.microsoft.com/rest/api/storageservices/performing-entity-group-transactions).
So the batch is written only when the reply holds exactly one success part per
operation, every status line well formed; an empty body, a part with another HTTP
version, a status line in other case, or a missing part is a failure.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from certsas.entities import encode_entity

# Any line that starts like a status line, however it is spelled: each must be well formed.
_STATUS_LINE = re.compile(rb"^[ \t]*HTTP/[^\r\n]*", re.MULTILINE | re.IGNORECASE)
_WELL_FORMED = re.compile(rb"HTTP/1\.1 ([1-5]\d\d)(?: [^\r\n]*)?")
INSERTED = frozenset({201, 204})  # 201 with the entity, 204 with Prefer: return-no-content


@dataclass(frozen=True)
class BatchReply:
    """What a transaction's reply says: written, or the status to report and why."""

    written: bool
    status: int  # the failing part's status; 0 when no part says why
    reason: str


def batch_request(endpoint: str, table: str, entities: Sequence[Mapping[str, Any]]
                  ) -> tuple[bytes, str]:
    """The body and Content-Type of a transaction inserting ``entities``."""
    batch, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
    parts = [
        f"--{changeset}\r\nContent-Type: application/http\r\n"
        "Content-Transfer-Encoding: binary\r\n\r\n"
        f"POST {endpoint}/{table} HTTP/1.1\r\n"
        "Content-Type: application/json\r\nAccept: application/json;odata=minimalmetadata"
        "\r\nPrefer: return-no-content\r\nDataServiceVersion: 3.0\r\n\r\n"
        f"{json.dumps(encode_entity(entity))}\r\n"
        for entity in entities
    ]
    body = (f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"
            + "".join(parts) + f"--{changeset}--\r\n\r\n--{batch}--\r\n")
    return body.encode("utf-8"), f"multipart/mixed; boundary={batch}"


def read_batch_reply(answer: bytes, operations: int) -> BatchReply:
    """Whether a 202's body says every one of ``operations`` inserts was stored."""
    statuses = []
    for line in _STATUS_LINE.findall(answer):
        well_formed = _WELL_FORMED.fullmatch(line.strip())
        if well_formed is None:
            return BatchReply(False, 0, "a part's status line is not HTTP/1.1")
        statuses.append(int(well_formed.group(1)))
    failed = [status for status in statuses if status not in INSERTED]
    if failed:
        return BatchReply(False, failed[0], "an insert was refused")
    if len(statuses) != operations:
        return BatchReply(False, 0, f"{len(statuses)} success parts for {operations} inserts")
    return BatchReply(True, 202, "")
