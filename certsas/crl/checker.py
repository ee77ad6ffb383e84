"""Revocation by CRL: one source of the policy in :mod:`certsas.revocation`.

:class:`CrlChecker` finds the CRL (``CRL_URL``, else the leaf's first http(s) distribution
point), downloads it through :mod:`certsas.netfetch` (``CRL_TIMEOUT_SECONDS``,
``CRL_MAX_BYTES``, no redirects, blocked networks for a URL from the certificate),
validates and indexes it (:mod:`certsas.crl.validation`), and answers by serial lookup:

    serial listed (certificateHold too)      -> REVOKED
    serial not listed                        -> GOOD
    no distribution point, no CRL_URL        -> UNKNOWN
    download or validation failed            -> UNAVAILABLE

Caching, per (URL, issuing CA): a valid CRL is kept until its nextUpdate (plus the clock
skew validation allows, so a CRL just past it is not downloaded per request). Once most of its
life has passed (``refresh_fraction``) the next lookup starts one background refresh and is
answered from the cached CRL; a failed refresh is logged and the cached CRL kept until its
nextUpdate. A cold cache downloads once however many requests wait (single flight). A failed
download is remembered for ``failure_hold_seconds`` so a broken CRL is not fetched per request.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from certsas.cache import ExpiringLru, FlightAbandoned, SingleFlight
from certsas.clock import Clock, iso, system_clock
from certsas.crl.validation import (
    CLOCK_SKEW,
    CrlIndex,
    CrlInvalid,
    covers,
    distribution_point_url,
    validate_crl,
)
from certsas.netfetch import FetchError, NetFetcher
from certsas.revocation import Status, Verdict
from certsas.verification import VerifiedCertificate

logger = logging.getLogger("certsas.crl")

# (URL, the issuing CA's certificate): certificates hash and compare by their DER, cheaply.
CacheKey = tuple[str, x509.Certificate]
CRL_ACCEPT = "application/pkix-crl, application/x-pkcs7-crl;q=0.9, */*;q=0.1"
# Waiters on a download wait its budget plus this: parsing and indexing a CRL at the size
# cap (20 MB, some 500,000 entries) takes seconds after the last byte arrives.
PARSE_MARGIN_SECONDS = 5.0


@dataclass(frozen=True)
class _Cached:
    index: CrlIndex
    refresh_at: datetime | None  # None: no refresh before nextUpdate
    refreshing: bool = False


class CrlChecker:
    """The CRL :class:`certsas.revocation.RevocationSource`."""

    name = "crl"

    def __init__(
        self,
        *,
        crl_url: str | None,
        timeout_seconds: float,
        max_bytes: int,
        fetcher: NetFetcher | None = None,
        clock: Clock = system_clock,
        refresh_fraction: float = 0.8,
        refresh_retry_seconds: float = 60.0,
        failure_hold_seconds: float = 5.0,
        max_crls: int = 32,
    ) -> None:
        if timeout_seconds <= 0 or max_bytes < 1:
            raise ValueError("timeout_seconds and max_bytes must be positive")
        if not 0 < refresh_fraction < 1:
            raise ValueError("refresh_fraction must be between 0 and 1")
        self.crl_url = crl_url
        self.timeout_seconds = timeout_seconds
        self.max_bytes = max_bytes
        self._fetcher = fetcher if fetcher is not None else NetFetcher()
        self._clock = clock
        self._refresh_fraction = refresh_fraction
        self._refresh_retry = timedelta(seconds=refresh_retry_seconds)
        self._failure_hold = timedelta(seconds=failure_hold_seconds)
        self._max_crls = max_crls
        self._lock = threading.Lock()
        self._cached: dict[CacheKey, _Cached] = {}
        self._failures: ExpiringLru[CacheKey, Verdict] = ExpiringLru(max_crls)
        self._flights: SingleFlight[CacheKey, CrlIndex | Verdict] = SingleFlight()
        self._refreshes: list[threading.Thread] = []
        self._downloads = 0

    @property
    def downloads(self) -> int:
        """How many downloads were started (tests and the benchmark count them)."""
        with self._lock:
            return self._downloads

    def verdict(self, verified: VerifiedCertificate) -> Verdict:
        certificate = verified.certificate
        url = self.crl_url or distribution_point_url(certificate)
        if url is None:
            return Verdict(Status.UNKNOWN, "the certificate names no http(s) CRL distribution "
                                           "point and CRL_URL is not set")
        key: CacheKey = (url, verified.issuer)
        index = self._current(key, url, verified)
        if isinstance(index, Verdict):
            return index
        if not covers(index, certificate):
            return Verdict(Status.UNAVAILABLE, f"CRL at {url} is a partition for other "
                                               "certificates (issuing distribution point)")
        revoked, reason = index.reason(certificate.serial_number)
        if not revoked:
            return Verdict(Status.GOOD, f"CRL at {url}: serial not listed")
        serial = format(certificate.serial_number, "X")
        why = f" ({reason.value})" if reason is not None else ""
        return Verdict(Status.REVOKED, f"CRL: serial {serial} revoked{why} "
                                       f"(CRL of {iso(index.this_update)}, {url})")

    # --- the cache ------------------------------------------------------------------

    def _current(self, key: CacheKey, url: str, verified: VerifiedCertificate) -> CrlIndex | Verdict:
        now = self._clock()
        with self._lock:
            cached = self._cached.get(key)
        if cached is not None and now < cached.index.next_update + CLOCK_SKEW:
            self._maybe_refresh(key, url, verified, cached, now)
            return cached.index
        failed = self._failures.get(key, now)
        if failed is not None:
            return failed
        try:
            return self._flights.run(key, lambda: self._load_cold(key, url, verified),
                                     wait_seconds=self.timeout_seconds + PARSE_MARGIN_SECONDS)
        except FlightAbandoned as exc:
            return Verdict(Status.UNAVAILABLE, f"CRL download from {url}: {exc}")

    def _load_cold(self, key: CacheKey, url: str, verified: VerifiedCertificate
                   ) -> CrlIndex | Verdict:
        """The flight's work on a cold cache: unless one landed meanwhile, download."""
        with self._lock:
            cached = self._cached.get(key)
        if cached is not None and self._clock() < cached.index.next_update + CLOCK_SKEW:
            return cached.index
        loaded = self._download(url, verified)
        if isinstance(loaded, Verdict):
            self._failures.put(key, loaded, self._clock() + self._failure_hold)
            return loaded
        self._store(key, loaded)
        return loaded

    def _download(self, url: str, verified: VerifiedCertificate) -> CrlIndex | Verdict:
        with self._lock:
            self._downloads += 1
        try:
            reply = self._fetcher.get(url, timeout=self.timeout_seconds, max_bytes=self.max_bytes,
                                      from_certificate=self.crl_url is None, accept=CRL_ACCEPT)
        except FetchError as exc:
            return Verdict(Status.UNAVAILABLE, f"CRL download from {url}: {exc}")
        try:
            return validate_crl(reply.body, verified.issuer, self._clock())
        except CrlInvalid as exc:
            return Verdict(Status.UNAVAILABLE, f"{exc} ({url})")

    def _store(self, key: CacheKey, index: CrlIndex) -> None:
        with self._lock:
            self._cached[key] = _Cached(index, self._refresh_time(index, self._clock()))
            while len(self._cached) > self._max_crls:
                oldest = min(self._cached, key=lambda k: self._cached[k].index.next_update)
                del self._cached[oldest]

    def _refresh_time(self, index: CrlIndex, now: datetime) -> datetime | None:
        """When to fetch the next CRL: once ``refresh_fraction`` of this one's life has passed
        (not sooner than ``refresh_retry_seconds`` from now), and only before its nextUpdate."""
        life = index.next_update - index.this_update
        at = max(index.this_update + life * self._refresh_fraction, now + self._refresh_retry)
        return at if at < index.next_update else None

    # --- background refresh ------------------------------------------------------------

    def _maybe_refresh(self, key: CacheKey, url: str, verified: VerifiedCertificate,
                       cached: _Cached, now: datetime) -> None:
        if cached.refreshing or cached.refresh_at is None or now < cached.refresh_at:
            return
        with self._lock:
            current = self._cached.get(key)
            if current is not cached:  # another request got here first, or it was replaced
                return
            self._cached[key] = _Cached(cached.index, cached.refresh_at, refreshing=True)
            thread = threading.Thread(target=self._refresh, args=(key, url, verified),
                                      name="crl-refresh", daemon=True)
            self._refreshes = [t for t in self._refreshes if t.is_alive()] + [thread]
        thread.start()

    def _refresh(self, key: CacheKey, url: str, verified: VerifiedCertificate) -> None:
        """Download the next CRL; keep the cached one (and say so) if that fails."""
        try:
            loaded = self._flights.run(key, lambda: self._download(url, verified),
                                       wait_seconds=self.timeout_seconds + PARSE_MARGIN_SECONDS)
        except FlightAbandoned as exc:
            loaded = Verdict(Status.UNAVAILABLE, f"CRL refresh from {url}: {exc}")
        except Exception as exc:  # a bug must not leave the entry marked as refreshing
            loaded = Verdict(Status.UNAVAILABLE, f"CRL refresh failed: {type(exc).__name__}")
        if isinstance(loaded, CrlIndex):
            self._store(key, loaded)
            return
        now = self._clock()
        with self._lock:
            cached = self._cached.get(key)
            if cached is None:
                return
            retry = now + self._refresh_retry
            self._cached[key] = _Cached(
                cached.index, retry if retry < cached.index.next_update else None)
        logger.warning("CRL refresh failed, keeping the cached CRL until its nextUpdate %s: %s",
                       iso(cached.index.next_update), loaded.detail)

    def wait_for_refreshes(self, timeout: float) -> bool:
        """Wait for background refreshes to finish (tests, the benchmark); True if they did."""
        with self._lock:
            threads = list(self._refreshes)
        for thread in threads:
            thread.join(timeout)
        return not any(thread.is_alive() for thread in threads)
