"""The OCSP transport seam: POST a DER request, get DER back, within a deadline.

:class:`OcspFetcher` is what :class:`certsas.ocsp.OcspChecker` calls; tests and
other transports implement it. :class:`RequestsFetcher` is the real one: one
``requests.Session`` (and so one connection pool) per process.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

import requests
import urllib3
from requests.adapters import HTTPAdapter

OCSP_REQUEST_TYPE = "application/ocsp-request"
OCSP_RESPONSE_TYPE = "application/ocsp-response"
# A response carries a few certificates at most; anything bigger is not an OCSP answer.
MAX_RESPONSE_BYTES = 64 * 1024


class OcspFetchError(Exception):
    """No response body to validate: transport failure, timeout, HTTP status or content type.

    Internal to the OCSP modules; the checker turns it into ``RevocationUnavailable``.
    """


class OcspFetcher(Protocol):
    def post(self, url: str, request_der: bytes, timeout: float) -> bytes:
        """The response body; raise :class:`OcspFetchError` unless HTTP 200 with OCSP content."""
        ...


_session: requests.Session | None = None
_session_lock = threading.Lock()


def shared_session() -> requests.Session:
    """The process's one session, made on first use (Functions reuse the worker process)."""
    global _session
    with _session_lock:
        if _session is None:
            session = requests.Session()
            # Requests for different certificates run in parallel; keep their connections.
            session.mount("http://", HTTPAdapter(pool_maxsize=32))
            session.mount("https://", HTTPAdapter(pool_maxsize=32))
            _session = session
        return _session


class RequestsFetcher:
    """POSTs with ``requests``; the whole exchange (connect, headers, body) fits ``timeout``."""

    def post(self, url: str, request_der: bytes, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        try:
            response = shared_session().post(
                url,
                data=request_der,
                headers={
                    "Content-Type": OCSP_REQUEST_TYPE,
                    "Accept": OCSP_RESPONSE_TYPE,
                    "Accept-Encoding": "identity",
                },
                # ``total`` bounds connect plus the wait for headers together; requests passes
                # a urllib3 Timeout through unchanged (HTTPAdapter.send), its stubs omit it.
                timeout=urllib3.Timeout(total=timeout),  # type: ignore[arg-type]
                stream=True,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise OcspFetchError(f"no answer within {timeout:.2f}s") from None
        except requests.RequestException as exc:
            raise OcspFetchError(f"unreachable ({type(exc).__name__})") from None
        with response:
            if response.status_code != 200:
                raise OcspFetchError(f"HTTP {response.status_code}")
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if content_type != OCSP_RESPONSE_TYPE:
                raise OcspFetchError(f"content type {content_type or 'missing'!r}, not OCSP")
            return _read_body(response, deadline)


def _read_body(response: requests.Response, deadline: float) -> bytes:
    """Read as data arrives, re-arming the socket timeout so a trickle cannot pass the deadline."""
    raw = response.raw
    if raw is None:
        raise OcspFetchError("no response body")
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise OcspFetchError("timed out reading the response")
        connection = raw.connection
        if connection is not None and connection.sock is not None:
            connection.sock.settimeout(remaining)
        try:
            chunk = raw.read1(8192)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise OcspFetchError(f"reading the response failed ({type(exc).__name__})") from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise OcspFetchError(f"response larger than {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)
