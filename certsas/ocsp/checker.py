"""Revocation by OCSP (RFC 6960): one source of the policy in :mod:`certsas.revocation`.

:class:`OcspChecker` asks the responder named in the leaf's AIA extension (or
``OCSP_RESPONDER_URL``), accepts only a response that :mod:`certsas.ocsp.validation`
finds signed, fresh and unambiguous, and returns a :class:`~certsas.revocation.Verdict`:

    good / revoked                   -> GOOD / REVOKED
    unknown, or no responder known   -> UNKNOWN
    no valid answer (network, HTTP,  -> UNAVAILABLE
      responder status, validation)

It knows nothing of the mode; the policy decides what a verdict means.

Valid answers (good and revoked) are cached per (issuer key hash, serial) until
nextUpdate, capped at ``OCSP_CACHE_MAX_SECONDS``. Concurrent checks of one
certificate make one call; the waiters share its verdict, failures included.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

from certsas.cache import ExpiringLru, FlightAbandoned, SingleFlight
from certsas.clock import Clock, iso, system_clock
from certsas.errors import RevocationUnavailable
from certsas.netfetch import redact_url
from certsas.ocsp.fetch import HttpOcspFetcher, OcspFetcher, OcspFetchError
from certsas.ocsp.validation import OcspAnswer, key_hash, validate_response
from certsas.revocation import Status, Verdict
from certsas.verification import VerifiedCertificate

NONCE_BYTES = 16
# A retry is only worth starting with this much of the budget left.
MIN_RETRY_SECONDS = 0.05

CacheKey = tuple[bytes, int]  # (issuer key hash, serial): the CertID minus its hash choice

_STATUS = {
    ocsp.OCSPCertStatus.GOOD: Status.GOOD,
    ocsp.OCSPCertStatus.REVOKED: Status.REVOKED,
    ocsp.OCSPCertStatus.UNKNOWN: Status.UNKNOWN,
}


class OcspChecker:
    """The OCSP :class:`certsas.revocation.RevocationSource`."""

    name = "ocsp"

    def __init__(
        self,
        *,
        responder_url: str | None,
        timeout_seconds: float,
        cache_max_seconds: int,
        fetcher: OcspFetcher | None = None,
        clock: Clock = system_clock,
        cache_size: int = 4096,
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        if cache_max_seconds < 0:
            raise ValueError("cache_max_seconds must not be negative")
        self.responder_url = responder_url
        self.timeout_seconds = timeout_seconds
        self.cache_max_seconds = cache_max_seconds
        self._fetcher = fetcher if fetcher is not None else HttpOcspFetcher()
        self._clock = clock
        self._cache: ExpiringLru[CacheKey, OcspAnswer] = ExpiringLru(cache_size)
        self._flights: SingleFlight[CacheKey, OcspAnswer | Verdict] = SingleFlight()

    def verdict(self, verified: VerifiedCertificate) -> Verdict:
        answer = self._answer(verified)
        if isinstance(answer, Verdict):
            return answer
        serial = _serial_hex(verified.certificate)
        if answer.status is ocsp.OCSPCertStatus.REVOKED:
            return Verdict(Status.REVOKED, _revoked_detail(answer, serial))
        if answer.status is ocsp.OCSPCertStatus.UNKNOWN:
            return Verdict(Status.UNKNOWN, f"OCSP responder answered unknown for serial {serial}")
        return Verdict(_STATUS[answer.status], f"OCSP: serial {serial} good")

    def _answer(self, verified: VerifiedCertificate) -> OcspAnswer | Verdict:
        key: CacheKey = (key_hash(verified.issuer), verified.certificate.serial_number)
        cached = self._cache.get(key, self._clock())
        if cached is not None:
            return cached
        try:
            # Waiters wait for the leader's whole budget (one call plus a retry) and a margin.
            return self._flights.run(
                key, lambda: self._ask(verified, key), wait_seconds=self.timeout_seconds + 1.0
            )
        except FlightAbandoned as exc:
            return Verdict(Status.UNAVAILABLE, f"OCSP check for this certificate: {exc}")

    def _ask(self, verified: VerifiedCertificate, key: CacheKey) -> OcspAnswer | Verdict:
        """One round trip, validated; runs once per flight."""
        cached = self._cache.get(key, self._clock())  # a flight may have landed meanwhile
        if cached is not None:
            return cached
        url = self.responder_url or responder_url_of(verified.certificate)
        if url is None:
            return Verdict(
                Status.UNKNOWN,
                "the certificate names no OCSP responder (no AIA OCSP URL) and "
                "OCSP_RESPONDER_URL is not set",
            )
        request, nonce = build_request(verified.certificate, verified.issuer)
        try:
            der = self._post(url, request.public_bytes(serialization.Encoding.DER),
                             from_certificate=self.responder_url is None)
        except OcspFetchError as exc:
            return Verdict(Status.UNAVAILABLE, f"OCSP responder {redact_url(url)}: {exc}")
        now = self._clock()
        try:
            answer = validate_response(der, request, verified.issuer, nonce, now)
        except RevocationUnavailable as exc:
            return Verdict(Status.UNAVAILABLE, f"{exc.detail} (responder {redact_url(url)})")
        self._remember(key, answer)
        return answer

    def _post(self, url: str, request_der: bytes, *, from_certificate: bool) -> bytes:
        """POST within the timeout in total: a second attempt only if time remains."""
        deadline = time.monotonic() + self.timeout_seconds
        error = OcspFetchError("no attempt made")
        for _attempt in range(2):
            remaining = deadline - time.monotonic()
            if remaining < MIN_RETRY_SECONDS:
                break
            try:
                return self._fetcher.post(url, request_der, remaining,
                                          from_certificate=from_certificate)
            except OcspFetchError as exc:
                error = exc
        raise error

    def _remember(self, key: CacheKey, answer: OcspAnswer) -> None:
        """Good and revoked answers, until nextUpdate, capped; never "unknown", never undated."""
        if answer.next_update is None or self.cache_max_seconds == 0:
            return
        if answer.status is ocsp.OCSPCertStatus.UNKNOWN:
            return
        now = self._clock()
        until = min(answer.next_update, now + timedelta(seconds=self.cache_max_seconds))
        if until > now:
            self._cache.put(key, answer, until)


def build_request(
    certificate: x509.Certificate, issuer: x509.Certificate
) -> tuple[ocsp.OCSPRequest, bytes]:
    """A SHA-1 CertID request (what every responder understands) with a fresh nonce."""
    nonce = os.urandom(NONCE_BYTES)
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, issuer, hashes.SHA1())  # noqa: S303 - CertID, not a signature
        .add_extension(x509.OCSPNonce(nonce), critical=False)
        .build()
    )
    return request, nonce


def responder_url_of(certificate: x509.Certificate) -> str | None:
    """The first http(s) OCSP URL in the Authority Information Access extension."""
    try:
        aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    except x509.ExtensionNotFound:
        return None
    for description in aia.value:
        location = description.access_location
        if (
            description.access_method == AuthorityInformationAccessOID.OCSP
            and isinstance(location, x509.UniformResourceIdentifier)
            and location.value.lower().startswith(("http://", "https://"))
        ):
            return location.value
    return None


def _serial_hex(certificate: x509.Certificate) -> str:
    return format(certificate.serial_number, "X")


def _revoked_detail(answer: OcspAnswer, serial: str) -> str:
    when = f" at {iso(answer.revocation_time)}" if answer.revocation_time else ""
    reason = f" ({answer.revocation_reason.value})" if answer.revocation_reason else ""
    return f"OCSP: serial {serial} revoked{when}{reason}"
