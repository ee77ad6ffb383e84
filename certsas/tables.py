"""A lean Table client for the token path's hot calls: point read, insert, batch insert.

Why not the SDK's ``TableClient`` here: measured on the bench (docs/scale.md), one
``create_entity`` costs ~1.7 ms of CPU in our process, against ~0.3 ms for the same
request over ``http.client``; the rest is azure-core's pipeline (a dozen policies,
``requests``' per-call environment scan, the generated serializer). On the token path
that CPU, not the Table, bounds what an instance serves. Everything else (the CLI,
table creation, queries) keeps the SDK.

Same wire protocol as the SDK: Table REST version 2019-02-02, JSON with minimal
metadata, ``Prefer: return-no-content`` on inserts, the entity-group transaction as
``multipart/mixed``. Same auth: Shared Key (connection strings, Azurite) or an Entra ID
bearer token from an azure-identity credential (managed identity), over HTTPS only.
Same retries as the SDK with ``retry_total=1``: a GET once more after a connection
error or a 408/429/500/502/503/504; a POST once more after a 500/503/504 only. Errors
are azure-core's exception types, so callers catch ``AzureError`` as before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import re
import select
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from email.utils import formatdate
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)

from certsas.entities import decode_entity, encode_entity

API_VERSION = "2019-02-02"
STORAGE_SCOPE = "https://storage.azure.com/.default"
POOL_SIZE = 64  # idle connections kept: one per worker thread (see storage.POOL_SIZE)
RETRY_GET = frozenset({408, 429, 500, 502, 503, 504})
RETRY_POST = frozenset({500, 503, 504})
TOKEN_REFRESH_MARGIN_SECONDS = 300.0
USER_AGENT = "certsas-tables"  # names the caller in storage analytics logs
_BATCH_STATUS = re.compile(rb"^HTTP/1\.1 (\d{3})", re.MULTILINE)

Operation = tuple[str, Mapping[str, Any]]


class EntityReader(Protocol):
    def get_entity(self, partition_key: str, row_key: str) -> Mapping[str, Any]: ...


class EntityWriter(Protocol):
    def create_entity(self, entity: Mapping[str, Any]) -> Any: ...

    def submit_transaction(self, operations: Iterable[Operation]) -> Any: ...


class HotTable(EntityReader, EntityWriter, Protocol):
    """The calls the token path makes: ``LeanTable`` and the SDK's ``TableClient`` both fit."""


class AccessToken(Protocol):
    """azure-core's ``AccessToken`` (a named tuple)."""

    @property
    def token(self) -> str: ...

    @property
    def expires_on(self) -> int: ...


class TokenCredential(Protocol):
    """What azure-identity's credentials offer (``DefaultAzureCredential`` and friends)."""

    def get_token(self, *scopes: str) -> AccessToken: ...


# --- auth ----------------------------------------------------------------------------


class SharedKey:
    """Shared Key authorization for the Table service (the SDK's string to sign)."""

    def __init__(self, account_name: str, account_key: str) -> None:
        self._account = account_name
        self._key = base64.b64decode(account_key)

    def authorization(self, method: str, path: str, content_type: str, date: str) -> str:
        # The query string is never signed for Table, except comp=, which we never send.
        signed = f"{method}\n\n{content_type}\n{date}\n/{self._account}{path.split('?')[0]}"
        digest = hmac.new(self._key, signed.encode("utf-8"), hashlib.sha256).digest()
        return f"SharedKey {self._account}:{base64.b64encode(digest).decode('ascii')}"

    def forget(self) -> None:
        return None  # a key has nothing to renew


class BearerToken:
    """An Entra ID token for Azure Storage, fetched once and renewed before it expires."""

    def __init__(self, credential: TokenCredential, *, clock: Callable[[], float] = time.time,
                 refresh_margin: float = TOKEN_REFRESH_MARGIN_SECONDS) -> None:
        self._credential = credential
        self._clock = clock
        self._margin = refresh_margin
        self._lock = threading.Lock()
        self._token: AccessToken | None = None

    def authorization(self, method: str, path: str, content_type: str, date: str) -> str:
        with self._lock:  # one fetch at a time; the others wait for it
            if self._token is None or self._token.expires_on - self._clock() < self._margin:
                self._token = self._credential.get_token(STORAGE_SCOPE)
            return f"Bearer {self._token.token}"

    def forget(self) -> None:
        """Drop the token after a 401: revoked or rotated early, the next call fetches anew."""
        with self._lock:
            self._token = None


class Authorizer(Protocol):
    def authorization(self, method: str, path: str, content_type: str, date: str) -> str: ...

    def forget(self) -> None: ...


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
        self._timeout = timeout_seconds
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
            return http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout,
                                               context=self._context)
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)

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
        path = f"{self._base}/{self._table}(PartitionKey='{_key(partition_key)}',RowKey='{_key(row_key)}')"
        status, body = self._send("GET", path, b"", "", RETRY_GET, retry_errors=True)
        if status != 200:
            raise _error(status, body, "read")
        try:
            return decode_entity(json.loads(body))
        except (ValueError, TypeError, AttributeError):  # a garbled answer is a storage fault
            raise HttpResponseError(message="Table read answered 200 with no entity") from None

    def create_entity(self, entity: Mapping[str, Any]) -> None:
        body = json.dumps(encode_entity(entity)).encode("utf-8")
        status, answer = self._send("POST", f"{self._base}/{self._table}", body,
                                    "application/json", RETRY_POST, retry_errors=False)
        if status != 204:
            raise _error(status, answer, "insert")

    def submit_transaction(self, operations: Iterable[Operation]) -> None:
        """Inserts into one partition, all or none (an entity-group transaction)."""
        batch, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
        parts = []
        for verb, entity in operations:
            if verb != "create":
                raise ValueError(f"only inserts are batched here, not {verb!r}")
            parts.append(
                f"--{changeset}\r\nContent-Type: application/http\r\n"
                "Content-Transfer-Encoding: binary\r\n\r\n"
                f"POST {self._endpoint}/{self._table} HTTP/1.1\r\n"
                "Content-Type: application/json\r\nAccept: application/json;odata=minimalmetadata"
                "\r\nPrefer: return-no-content\r\nDataServiceVersion: 3.0\r\n\r\n"
                f"{json.dumps(encode_entity(entity))}\r\n")
        body = (f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"
                + "".join(parts) + f"--{changeset}--\r\n\r\n--{batch}--\r\n").encode("utf-8")
        status, answer = self._send("POST", f"{self._base}/$batch", body,
                                    f"multipart/mixed; boundary={batch}", RETRY_POST,
                                    retry_errors=False)
        if status != 202:
            raise _error(status, answer, "batch insert")
        for part_status in (int(s) for s in _BATCH_STATUS.findall(answer)):
            if not 200 <= part_status < 300:
                raise _error(part_status, _json_part(answer), "batch insert")

    def _send(self, method: str, path: str, body: bytes, content_type: str,
              retry_statuses: frozenset[int], *, retry_errors: bool) -> tuple[int, bytes]:
        path = quote(path, safe="/()',=$")
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
                if attempt == 1 and retry_errors:
                    continue
                raise ServiceRequestError(f"Table {method} failed: {type(exc).__name__}") from None
            if response.will_close:
                connection.close()
            else:
                self._connections.give(connection)
            if response.status == 401:
                self._auth.forget()
            if attempt == 1 and response.status in retry_statuses:
                continue
            return response.status, answer
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns


def _key(value: str) -> str:
    return value.replace("'", "''")


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
