"""The retry policy of the Storage clients certsas.client hands out.

azure-storage-blob takes a retry policy as a constructor keyword (``retry_policy=``) and runs
it before its credential policy, once per call, around every attempt. This one is Storage's
own :class:`ExponentialRetry` (so transient faults are retried exactly as usual) with two
things added around it: before every attempt, Storage's own retries included, the scope's
token is replaced if less than a fifth of its lifetime is left (the shared
:class:`AzureSasCredential` is updated, and the credential policy stamps the new SAS on the
attempt); and a 403 ``AuthenticationFailed`` is tried again with a new token, after a growing
pause, a few times within about a minute.

Storage's retry hands its hooks (``configure_retries``, ``increment``, ``sleep``, public
methods of ExponentialRetry) the request as the last attempt left it: with that attempt's SAS
in the URL. azure-core's AzureSasCredentialPolicy appends the credential's SAS to a URL that
does not already hold that exact text, so a retry after a renewal would carry two SAS, which
Storage refuses; ``increment`` puts the URL back as it was before any SAS.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from io import UnsupportedOperation
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.storage.blob import ExponentialRetry

from certsas.client.errors import (
    AUTHENTICATION_FAILED,
    BodyNotReplayable,
    StorageAuthenticationFailed,
)
from certsas.client.scopes import ScopeTokens
from certsas.client.tokens import signature_of

# Pauses before each new token after Storage refused one: five more tries within 60 s, enough
# for certsas to sign with its new key after `certsas revoke-tokens` (REGISTRY_CACHE_SECONDS,
# 30 s by default, SPEC §2b).
AUTH_RETRY_DELAYS = (2.0, 4.0, 8.0, 16.0, 30.0)
# Storage's own retry settings, which callers may pass to container_client()/blob_client().
RETRY_KEYWORDS = ("retry_total", "retry_connect", "retry_read", "retry_status",
                  "retry_to_secondary", "initial_backoff", "increment_base",
                  "random_jitter_range")

Sleep = Callable[[float], None]
# Where configure_retries keeps the request's URL without SAS, in Storage's per-call settings.
_UNSIGNED_URL = "certsas_unsigned_url"


class FreshSasRetry(ExponentialRetry):
    """Storage's exponential retry, with the scope's SAS kept fresh and renewed on refusal."""

    def __init__(self, tokens: ScopeTokens, *, delays: tuple[float, ...] = AUTH_RETRY_DELAYS,
                 sleep: Sleep = time.sleep, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._tokens = tokens
        self._delays = delays
        self._sleep = sleep

    def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        http = request.http_request
        url = http.url  # before the credential policy (after this one) adds the SAS
        replay = _Replay.of(http.body)
        self._tokens.current()
        waited = 0.0
        for delay in (*self._delays, None):
            response: PipelineResponse[Any, Any] = super().send(request)  # type: ignore[no-untyped-call]
            if not _authentication_failed(response):
                return response
            refused = signature_of(response.http_request.url)
            if delay is None:
                raise StorageAuthenticationFailed(
                    f"Storage refused the SAS as not authenticated (403 {AUTHENTICATION_FAILED}) "
                    f"{len(self._delays) + 1} times over {waited:g}s, with a new token each "
                    f"time; giving up. Were tokens revoked (revoke-tokens) and the service is "
                    f"not signing with a new key yet, or is this machine's clock wrong?")
            if not replay.rewind():
                raise BodyNotReplayable(
                    f"Storage refused the SAS as not authenticated (403 {AUTHENTICATION_FAILED})"
                    f" and the request was not sent again with a new token: its body "
                    f"({replay.kind}) is a one-way stream that has been read. Pass bytes or a "
                    f"seekable file to have such a request retried.")
            self._sleep(delay)
            waited += delay
            self._tokens.renew(refused)
            http.url = url
        raise AssertionError("unreachable: the last delay is None")

    def configure_retries(self, request: PipelineRequest[Any]) -> dict[str, Any]:
        settings: dict[str, Any] = super().configure_retries(request)
        settings[_UNSIGNED_URL] = request.http_request.url  # the credential policy comes after
        return settings

    def increment(self, settings: dict[str, Any], request: Any, response: Any = None,
                  error: Any = None) -> bool:
        again: bool = super().increment(
            settings, request, response=response, error=error)
        if again:  # the next attempt is stamped afresh, on the host Storage's retry chose
            host = urlsplit(request.url).netloc
            request.url = urlunsplit(urlsplit(settings[_UNSIGNED_URL])._replace(netloc=host))
        return again

    def sleep(self, settings: dict[str, Any], transport: Any) -> None:
        super().sleep(settings, transport)  # type: ignore[no-untyped-call]
        self._tokens.current()  # a retry is a request: the token it carries has a fifth left


def _authentication_failed(response: PipelineResponse[Any, Any]) -> bool:
    answer = response.http_response
    return bool(answer.status_code == 403
                and answer.headers.get("x-ms-error-code") == AUTHENTICATION_FAILED)


@dataclass(frozen=True)
class _Replay:
    """Whether, and how, a request body can be sent a second time."""

    kind: str
    body: Any
    position: int | None  # a stream's start; None for bodies that are values

    @classmethod
    def of(cls, body: Any) -> _Replay:
        kind = type(body).__name__
        if body is None or isinstance(body, bytes | bytearray | str | memoryview | dict):
            return cls(kind, body, None)
        if hasattr(body, "read") and hasattr(body, "seek"):
            try:
                if not hasattr(body, "seekable") or body.seekable():
                    return cls(kind, body, int(body.tell()))
            except (OSError, UnsupportedOperation, ValueError, AttributeError):
                pass
        return cls(kind, body, -1)

    def rewind(self) -> bool:
        if self.position is None:
            return True
        if self.position < 0:
            return False
        try:
            self.body.seek(self.position)
        except (OSError, UnsupportedOperation, ValueError):
            return False
        return True
