"""A lean Table client for the token path's hot calls: point read, insert, batch insert.

Why not the SDK's ``TableClient`` here: measured on the bench (docs/scale.md), one
``create_entity`` costs ~1.7 ms of CPU in our process, against ~0.3 ms for the same
request over ``http.client``; the rest is azure-core's pipeline (a dozen policies,
``requests``' per-call environment scan, the generated serializer). On the token path
that CPU, not the Table, bounds what an instance serves. Everything else (the CLI,
table creation, queries) keeps the SDK.

Same wire protocol as the SDK: Table REST version 2019-02-02, JSON with minimal
metadata, ``Prefer: return-no-content`` on inserts, the entity-group transaction as
``multipart/mixed`` (certsas/tablebatch.py). Same auth: Shared Key (connection strings,
Azurite) or an Entra ID bearer token from an azure-identity credential (managed
identity), over HTTPS only (certsas/tableauth.py). Errors are azure-core's exception
types, so callers catch ``AzureError`` as before.

Retries, as the SDK's with ``retry_total=1`` and two differences: one attempt more at
most, and it starts within the connection timeout of the call's start, so a call takes
no longer than two attempts. Once more after a 408/429/500/502/503/504 (a POST: after a
500/503/504, or one of the others with ``Retry-After``), waiting what ``Retry-After``
asks; once more after a 401, with a token the credential did not take from its cache;
and once more after a connection error, for inserts too: an insert whose answer was
lost may have been stored, and its retry then answers 409. Inserts here have fresh keys
(the audit records' RowKeys are random), so a caller that gets a 409 reads the row back
(:func:`stored_as_sent`): the same record is its own write, not a failure.
"""

from __future__ import annotations

import http.client
import json
import select
import ssl
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from email.utils import formatdate, parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)

from certsas.entities import decode_entity, encode_entity
from certsas.tableauth import STORAGE_SCOPE, Authorizer, BearerToken, SharedKey
from certsas.tablebatch import batch_request, read_batch_reply

__all__ = ["STORAGE_SCOPE", "Authorizer", "BearerToken", "Connections", "EntityReader",
           "EntityWriter", "HotTable", "LeanTable", "SharedKey", "stored_as_sent"]

API_VERSION = "2019-02-02"
POOL_SIZE = 64  # idle connections kept: one per worker thread (see storage.POOL_SIZE)
RETRY_GET = frozenset({408, 429, 500, 502, 503, 504})
RETRY_POST = frozenset({500, 503, 504})
USER_AGENT = "certsas-tables"  # names the caller in storage analytics logs

Operation = tuple[str, Mapping[str, Any]]


class EntityReader(Protocol):
    def get_entity(self, partition_key: str, row_key: str) -> Mapping[str, Any]: ...


class EntityWriter(Protocol):
    def create_entity(self, entity: Mapping[str, Any]) -> Any: ...

    def submit_transaction(self, operations: Iterable[Operation]) -> Any: ...


class HotTable(EntityReader, EntityWriter, Protocol):
    """The calls the token path makes: ``LeanTable`` and the SDK's ``TableClient`` both fit."""


def stored_as_sent(table: EntityReader, entities: Sequence[Mapping[str, Any]]) -> bool:
    """Whether every entity is in ``table`` with the properties it was sent with.

    For an insert answered 409 whose keys were fresh: the row is the insert's own
    earlier attempt (its answer lost) exactly when it holds what was sent. Read off the
    hot path, only after a 409; one point read per entity.
    """
    for entity in entities:
        try:
            stored = table.get_entity(entity["PartitionKey"], entity["RowKey"])
        except AzureError:
            return False
        if any(stored.get(name) != value for name, value in entity.items()
               if value is not None):
            return False
    return True


# --- connections ---------------------------------------------------------------------


class Connections:
    """Keep-alive connections to one endpoint, shared by every thread (LIFO, bounded)."""

    def __init__(self, endpoint: str, timeout_seconds: float, *,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("table endpoint must be an http(s) URL")
        self.https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self.timeout = timeout_seconds
        self._context = ssl_context or (ssl.create_default_context() if self.https else None)
        self._lock = threading.Lock()
        self._idle: list[http.client.HTTPConnection] = []

    def take(self) -> http.client.HTTPConnection:
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if not _dropped(connection):
                    return connection
                connection.close()
        if self.https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout,
                                               context=self._context)
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)

    def give(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < POOL_SIZE:
                self._idle.append(connection)
                return
        connection.close()


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """An idle keep-alive socket that is readable was closed by the server (as urllib3 checks).

    ``poll`` where there is one: ``select`` fails on descriptors above FD_SETSIZE (1024).
    """
    sock = connection.sock
    if sock is None:
        return True
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock], [], [], 0)[0])


# --- the table -----------------------------------------------------------------------


class LeanTable:
    """One table: ``get_entity``, ``create_entity`` and an all-insert ``submit_transaction``."""

    def __init__(self, endpoint: str, table: str, auth: Authorizer, connections: Connections
                 ) -> None:
        if isinstance(auth, BearerToken) and not connections.https:
            raise ValueError("bearer tokens are only sent over https")
        self._endpoint = endpoint.rstrip("/")
        self._base = urlsplit(self._endpoint).path.rstrip("/")
        self._table = table
        self._auth = auth
        self._connections = connections

    def get_entity(self, partition_key: str, row_key: str) -> dict[str, Any]:
        path = (f"{self._base}/{self._table}"
                f"(PartitionKey='{_key(partition_key)}',RowKey='{_key(row_key)}')")
        status, body = self._send("GET", path, b"", "", RETRY_GET)
        if status != 200:
            raise _error(status, body, "read")
        try:
            return decode_entity(json.loads(body))
        except (ValueError, TypeError, AttributeError):  # a garbled answer is a storage fault
            raise HttpResponseError(message="Table read answered 200 with no entity") from None

    def create_entity(self, entity: Mapping[str, Any]) -> None:
        _entity_keys(entity)
        body = json.dumps(encode_entity(entity)).encode("utf-8")
        status, answer = self._send("POST", f"{self._base}/{self._table}", body,
                                    "application/json", RETRY_POST)
        if status != 204:
            raise _error(status, answer, "insert")

    def submit_transaction(self, operations: Iterable[Operation]) -> None:
        """Inserts into one partition, all or none (an entity-group transaction)."""
        entities = []
        for verb, entity in operations:
            if verb != "create":
                raise ValueError(f"only inserts are batched here, not {verb!r}")
            _entity_keys(entity)
            entities.append(entity)
        body, content_type = batch_request(self._endpoint, self._table, entities)
        status, answer = self._send("POST", f"{self._base}/$batch", body, content_type,
                                    RETRY_POST)
        if status != 202:
            raise _error(status, answer, "batch insert")
        reply = read_batch_reply(answer, len(entities))
        if not reply.written:
            if reply.status:
                raise _error(reply.status, _json_part(answer), "batch insert")
            raise HttpResponseError(message=f"Table batch insert answered 202: {reply.reason}")

    def _send(self, method: str, path: str, body: bytes, content_type: str,
              retry_statuses: frozenset[int]) -> tuple[int, bytes]:
        deadline = time.monotonic() + self._connections.timeout
        for attempt in (1, 2):
            date = formatdate(usegmt=True)
            headers = {
                "x-ms-date": date, "x-ms-version": API_VERSION, "DataServiceVersion": "3.0",
                "Accept": "application/json;odata=minimalmetadata", "User-Agent": USER_AGENT,
                "Authorization": self._auth.authorization(method, path, content_type, date),
            }
            if content_type:
                headers["Content-Type"] = content_type
            if method == "POST" and "$batch" not in path:
                headers["Prefer"] = "return-no-content"
            connection = self._connections.take()
            try:
                connection.request(method, path, body=body or None, headers=headers)
                response = connection.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                if attempt == 1 and time.monotonic() < deadline:
                    continue  # an insert too: see the module doc
                raise ServiceRequestError(f"Table {method} failed: {type(exc).__name__}") from None
            if response.will_close:
                connection.close()
            else:
                self._connections.give(connection)
            if attempt == 1 and self._retry(response, headers["Authorization"], retry_statuses,
                                            deadline):
                continue
            return response.status, answer
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns

    def _retry(self, response: http.client.HTTPResponse, authorization: str,
               retry_statuses: frozenset[int], deadline: float) -> bool:
        """Whether to try once more after ``response``; waits first if it asks."""
        status = response.status
        if time.monotonic() >= deadline:
            return False  # the budget is spent: the answer stands
        if status == 401:
            try:
                return self._auth.refused(authorization, response.getheader("WWW-Authenticate"))
            except Exception:  # no new token to be had: the 401 stands
                return False
        wait = retry_after(response.getheader("Retry-After"))
        if status not in retry_statuses and not (wait is not None and status in RETRY_GET):
            return False
        wait = wait or 0.0
        if time.monotonic() + wait >= deadline:
            return False  # the wait would outlast the call's budget: the answer stands
        if wait:
            time.sleep(wait)
        return True


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP-date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _key(value: str) -> str:
    """A key as the SDK puts it in a URL: quotes doubled (OData), then percent-encoded."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a table key must be valid Unicode text (it holds a lone "
                         "surrogate)") from None
    return quote(value.replace("'", "''"), safe="")


def _entity_keys(entity: Mapping[str, Any]) -> None:
    for name in ("PartitionKey", "RowKey"):
        value = entity.get(name)
        if isinstance(value, str):
            _key(value)


def _json_part(answer: bytes) -> bytes:
    start, end = answer.find(b"{"), answer.rfind(b"}")
    return answer[start:end + 1] if 0 <= start < end else b""


def _error(status: int, body: bytes, what: str) -> HttpResponseError:
    """azure-core's exception for a status, with the service's error code (never the body)."""
    try:
        code = str(json.loads(body)["odata.error"]["code"])
    except (ValueError, KeyError, TypeError):
        code = None
    kind = {404: ResourceNotFoundError, 409: ResourceExistsError}.get(status, HttpResponseError)
    error = kind(message=f"Table {what} answered {status} {code or ''}".rstrip())
    error.status_code = status
    error.error_code = code  # type: ignore[attr-defined]  # set by the SDK's own errors too
    return error
