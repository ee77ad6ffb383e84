"""The OCSP transport seam: POST a DER request, get DER back, within a deadline.

:class:`OcspFetcher` is what :class:`certsas.ocsp.checker.OcspChecker` calls; tests and
other transports implement it. :class:`HttpOcspFetcher` is the real one, on
:mod:`certsas.netfetch` (wall-clock deadline, no redirects, size cap, blocked networks,
the cap on fetches in flight).
"""

from __future__ import annotations

from typing import Protocol

from certsas.netfetch import FetchError, NetFetcher

OCSP_REQUEST_TYPE = "application/ocsp-request"
OCSP_RESPONSE_TYPE = "application/ocsp-response"
# A response carries a few certificates at most; anything bigger is not an OCSP answer.
MAX_RESPONSE_BYTES = 64 * 1024


class OcspFetchError(Exception):
    """No response body to validate: transport failure, timeout, HTTP status or content type.

    Internal to the OCSP modules; the checker turns it into an "unavailable" verdict.
    """


class OcspFetcher(Protocol):
    def post(self, url: str, request_der: bytes, timeout: float, *,
             from_certificate: bool) -> bytes:
        """The response body; raise :class:`OcspFetchError` unless HTTP 200 with OCSP content.

        ``from_certificate``: the URL came from the certificate's AIA (blocked networks apply),
        not from ``OCSP_RESPONDER_URL``.
        """
        ...


class HttpOcspFetcher:
    """POSTs through :class:`certsas.netfetch.NetFetcher`; the whole exchange fits ``timeout``."""

    def __init__(self, fetcher: NetFetcher | None = None) -> None:
        self._fetcher = fetcher if fetcher is not None else NetFetcher()

    def post(self, url: str, request_der: bytes, timeout: float, *,
             from_certificate: bool) -> bytes:
        try:
            reply = self._fetcher.post(
                url, request_der, OCSP_REQUEST_TYPE, timeout=timeout,
                max_bytes=MAX_RESPONSE_BYTES, from_certificate=from_certificate,
                accept=OCSP_RESPONSE_TYPE)
        except FetchError as exc:
            raise OcspFetchError(str(exc)) from None
        if reply.content_type != OCSP_RESPONSE_TYPE:
            raise OcspFetchError(f"content type {reply.content_type or 'missing'!r}, not OCSP")
        return reply.body
