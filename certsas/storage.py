"""Storage SDK clients, built once per process with deliberate timeouts and retries.

The SDK defaults (retries with exponential back-off, read timeouts of minutes) would
hold a caller for a long time when storage is slow or down; certsas answers 503
quickly instead and lets the caller retry.
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobServiceClient

from certsas.accounts import AccountKeyAccess, ManagedIdentityAccess
from certsas.config import StorageSettings
from certsas.tables import Authorizer, BearerToken, Connections, HotTable, LeanTable, SharedKey

# The Functions Python worker runs sync functions in a thread pool; urllib3's default
# of 10 pooled connections would make the rest reconnect on every call.
POOL_SIZE = 64


def pooled_transport(timeout_seconds: float) -> RequestsTransport:
    """A transport with room for every worker thread, and our timeouts (a given
    transport ignores the clients' own timeout arguments)."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return RequestsTransport(session=session, session_owner=False,
                             connection_timeout=timeout_seconds, read_timeout=timeout_seconds)


class StorageClients:
    """Lazily built, thread-safe, shared Table and Blob clients for one storage account."""

    def __init__(self, settings: StorageSettings) -> None:
        self.settings = settings
        self.access = settings.access
        timeout_seconds = settings.timeout_seconds
        self._timeout = timeout_seconds
        self._options: dict[str, Any] = {
            "connection_timeout": timeout_seconds,
            "read_timeout": timeout_seconds,
            "retry_total": 1,
            "retry_backoff_factor": 0.2,
            "retry_backoff_max": 1,
        }
        self._lock = threading.Lock()
        self._tables: TableServiceClient | None = None
        self._blobs: BlobServiceClient | None = None
        self._credential: Any = None
        self._connections: Connections | None = None
        self._auth: Authorizer | None = None

    def _token_credential(self) -> Any:
        # Imported here, not at the top: with a connection string it is never used, and it
        # adds about 190 ms to a cold start on top of the storage SDKs (measured on the
        # 2-core CI machine: `import azure.identity` after azure.storage.blob and
        # azure.data.tables are loaded).
        from azure.identity import DefaultAzureCredential

        assert isinstance(self.access, ManagedIdentityAccess)
        if self._credential is None:
            self._credential = DefaultAzureCredential(
                managed_identity_client_id=self.access.client_id
            )
        return self._credential

    def _build(self, client_class: Any, endpoint: str) -> Any:
        """A Table or Blob service client: both take the same two constructions."""
        options = {**self._options, "transport": pooled_transport(self._timeout)}
        if isinstance(self.access, AccountKeyAccess):
            return client_class.from_connection_string(self.access.connection_string, **options)
        return client_class(endpoint, credential=self._token_credential(), **options)

    def table_service(self) -> TableServiceClient:
        with self._lock:
            if self._tables is None:
                self._tables = self._build(TableServiceClient, self.access.table_endpoint)
            return self._tables

    def blob_service(self) -> BlobServiceClient:
        with self._lock:
            if self._blobs is None:
                self._blobs = self._build(BlobServiceClient, self.access.blob_endpoint)
            return self._blobs

    def table(self, name: str) -> TableClient:
        return self.table_service().get_table_client(name)

    def hot_table(self, name: str) -> HotTable:
        """The token path's table: the lean client (see certsas.tables), or the SDK's when an
        outbound proxy applies to the endpoint (``requests`` honours ``HTTPS_PROXY``; the lean
        client does not speak to proxies)."""
        endpoint = self.access.table_endpoint
        if _proxied(endpoint):
            return self.table(name)
        with self._lock:
            if self._connections is None or self._auth is None:
                self._connections = Connections(endpoint, self._timeout)
                self._auth = (SharedKey(self.access.account_name, self.access.account_key)
                              if isinstance(self.access, AccountKeyAccess)
                              else BearerToken(self._token_credential()))
            return LeanTable(endpoint, name, self._auth, self._connections)

    def registry_table(self) -> TableClient:
        return self.table(self.settings.cert_table)

    def audit_table(self) -> TableClient:
        return self.table(self.settings.audit_table)



def _proxied(endpoint: str) -> bool:
    """Whether ``requests`` would send ``endpoint`` through a proxy from the environment."""
    return bool(requests.utils.get_environ_proxies(endpoint))
