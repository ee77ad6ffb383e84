"""``CertSas``: tokens from certsas, and Storage clients that stay authorised (SPEC §6a)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobClient, ContainerClient

from certsas.client import redact
from certsas.client.identity import Identity, Password, load_identity
from certsas.client.policy import AUTH_RETRY_DELAYS, RETRY_KEYWORDS, FreshSasRetry, Sleep
from certsas.client.scopes import Clock, ScopeTokens, system_clock
from certsas.client.service import Service
from certsas.client.tokens import Scope, Token

DEFAULT_TIMEOUT = 15.0


class CertSas:
    """One caller of one certsas token endpoint; safe to share between threads.

    ``cert`` is a PEM or DER certificate or a PKCS#12 file; ``key`` its private key (PEM or
    DER), unless ``cert`` holds it; ``password`` for an encrypted key or PKCS#12 (a string,
    or a function given the file name); ``ca`` a PEM bundle trusted for the endpoint's TLS
    certificate (default: the system's). ``clock``, ``sleep`` and ``auth_retry_delays`` are
    seams for tests and for callers who need another retry budget.
    """

    def __init__(self, url: str, *, cert: str | Path, key: str | Path | None = None,
                 ca: str | Path | None = None, timeout: float = DEFAULT_TIMEOUT,
                 password: Password = None, clock: Clock = system_clock,
                 sleep: Sleep = time.sleep,
                 auth_retry_delays: tuple[float, ...] = AUTH_RETRY_DELAYS) -> None:
        redact.install()
        self.url = url
        self.identity: Identity = load_identity(cert, key, password)
        self._service = Service(self.identity, ca, timeout)
        self._clock = clock
        self._sleep = sleep
        self._delays = auth_retry_delays
        self._lock = threading.Lock()
        self._scopes: dict[Scope, ScopeTokens] = {}

    def __repr__(self) -> str:
        return f"CertSas({self.url!r}, certificate {self.identity.thumbprint[:16]}...)"

    def token(self, container: str | None = None, blob: str | None = None,
              permissions: str | None = None, ttl_minutes: int | None = None) -> Token:
        """A token of this scope with at least a fifth of its lifetime left: the one in
        hand if it has, else a new one. :class:`Refused` when certsas says no."""
        return self._tokens(Scope(container, blob, permissions, ttl_minutes)).current()

    def container_client(self, container: str | None = None, permissions: str | None = None,
                         ttl_minutes: int | None = None, **kwargs: Any) -> ContainerClient:
        """An azure.storage.blob ContainerClient on a container-scoped token that it renews
        itself; ``kwargs`` go to the client (Storage's retry settings included)."""
        tokens = self._tokens(Scope(container, None, permissions, ttl_minutes))
        token = tokens.current()
        return ContainerClient.from_container_url(
            token.resource_url, credential=tokens.credential(),
            retry_policy=self._retry(tokens, kwargs), **kwargs)

    def blob_client(self, blob: str, container: str | None = None,
                    permissions: str | None = None, ttl_minutes: int | None = None,
                    **kwargs: Any) -> BlobClient:
        """An azure.storage.blob BlobClient on a token scoped to this one blob."""
        tokens = self._tokens(Scope(container, blob, permissions, ttl_minutes))
        token = tokens.current()
        return BlobClient.from_blob_url(
            token.resource_url, credential=tokens.credential(),
            retry_policy=self._retry(tokens, kwargs), **kwargs)

    def close(self) -> None:
        self._service.close()

    def __enter__(self) -> CertSas:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _tokens(self, scope: Scope) -> ScopeTokens:
        with self._lock:
            tokens = self._scopes.get(scope)
            if tokens is None:
                tokens = self._scopes[scope] = ScopeTokens(scope, self._fetch, self._clock)
            return tokens

    def _fetch(self, scope: Scope) -> Token:
        return Token.from_answer(self._service.post(self.url, scope.body(), expect=200))

    def _retry(self, tokens: ScopeTokens, kwargs: dict[str, Any]) -> FreshSasRetry:
        taken = sorted({"credential", "retry_policy"} & set(kwargs))
        if taken:
            raise TypeError(f"certsas.client sets {' and '.join(taken)} itself; Storage's retry "
                            f"settings ({', '.join(RETRY_KEYWORDS[:2])}, ...) are passed on")
        settings = {name: kwargs.pop(name) for name in RETRY_KEYWORDS if name in kwargs}
        return FreshSasRetry(tokens, delays=self._delays, sleep=self._sleep, **settings)
