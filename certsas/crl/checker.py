"""Revocation by CRL: one source of the policy in :mod:`certsas.revocation`.

:class:`CrlChecker` finds the CRL (``CRL_URL``, else the leaf's first http(s) distribution
point), downloads it through :mod:`certsas.netfetch` (``CRL_MAX_BYTES``, no redirects, blocked
networks for a URL from the certificate), validates and indexes it
(:mod:`certsas.crl.validation`), and answers by serial lookup:

    serial listed (certificateHold too)      -> REVOKED
    serial not listed                        -> GOOD
    no distribution point, no CRL_URL        -> UNKNOWN
    download or validation failed            -> UNAVAILABLE

Loads: a download and its validation run on a thread of their own, one per (URL, issuing CA)
however many requests want it. A request waits for it at most ``CRL_TIMEOUT_SECONDS`` in all,
download, parse and index together; one that gives up leaves the load running, and a CRL that
lands late is cached for the next request.

Caching, per (URL, issuing CA): a valid CRL is kept until its nextUpdate (plus the clock
skew validation allows, so a CRL just past it is not downloaded per request). Once most of its
life has passed (``refresh_fraction``) the next lookup starts one background refresh and is
answered from the cached CRL; a failed refresh is logged and the cached CRL kept until its
nextUpdate. A CRL never goes back in time: a download older than the newest seen (CRL number,
else thisUpdate) is a failed load. A failed load is remembered for ``failure_hold_seconds`` so
a broken CRL is not fetched per request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509

from certsas.cache import ExpiringLru
from certsas.clock import Clock, iso, system_clock
from certsas.crl.validation import (
    CLOCK_SKEW,
    CrlIndex,
    CrlInvalid,
    covers,
    distribution_point_url,
    validate_crl,
)
from certsas.netfetch import FetchError, NetFetcher, redact_url
from certsas.revocation import Status, Verdict
from certsas.verification import VerifiedCertificate

logger = logging.getLogger("certsas.crl")

# (URL, the issuing CA's certificate): certificates hash and compare by their DER, cheaply.
CacheKey = tuple[str, x509.Certificate]
CRL_ACCEPT = "application/pkix-crl, application/x-pkcs7-crl;q=0.9, */*;q=0.1"
# The memory cap (docs/revocation.md): an index costs about 100 bytes per entry, so at most
# 32 CRLs and a million entries together (some 100 MB); the CRL just loaded is always kept.
MAX_CRLS = 32
MAX_ENTRIES = 1_000_000


@dataclass(frozen=True)
class _Cached:
    index: CrlIndex
    refresh_at: datetime | None  # None: no refresh before nextUpdate


@dataclass
class _Load:
    """One download and validation, on its own thread; any number of requests wait for it."""

    done: threading.Event = field(default_factory=threading.Event)
    result: CrlIndex | Verdict | None = None


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
        anchors: Sequence[x509.Certificate] = (),
        refresh_fraction: float = 0.8,
        refresh_retry_seconds: float = 60.0,
        failure_hold_seconds: float = 5.0,
        max_crls: int = MAX_CRLS,
        max_entries: int = MAX_ENTRIES,
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
        # TRUSTED_CA_CERTS: a CA's renewed certificate may sign the CRL (check_signer).
        self._anchors = tuple(anchors)
        self._refresh_fraction = refresh_fraction
        self._refresh_retry = timedelta(seconds=refresh_retry_seconds)
        self._failure_hold = timedelta(seconds=failure_hold_seconds)
        self._max_crls = max_crls
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._cached: dict[CacheKey, _Cached] = {}
        # The newest CRL seen per key, kept when its index is evicted: no going back after that.
        self._newest: dict[CacheKey, CrlIndex] = {}
        self._failures: ExpiringLru[CacheKey, Verdict] = ExpiringLru(max_crls)
        self._loads: dict[CacheKey, _Load] = {}
        self._threads: list[threading.Thread] = []
        self._downloads = 0

    @property
    def downloads(self) -> int:
        """How many downloads were started (tests and the benchmark count them)."""
        with self._lock:
            return self._downloads

    @property
    def cached_crls(self) -> int:
        with self._lock:
            return len(self._cached)

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
        if not covers(index, certificate, url):
            return Verdict(Status.UNAVAILABLE, f"CRL at {redact_url(url)} is a partition for "
                                               "other certificates (issuing distribution point)")
        revoked, reason = index.reason(certificate.serial_number)
        if not revoked:
            return Verdict(Status.GOOD, f"CRL at {redact_url(url)}: serial not listed")
        serial = format(certificate.serial_number, "X")
        why = f" ({reason.value})" if reason is not None else ""
        return Verdict(Status.REVOKED, f"CRL: serial {serial} revoked{why} "
                                       f"(CRL of {iso(index.this_update)}, {redact_url(url)})")

    # --- the cache ------------------------------------------------------------------

    def _current(self, key: CacheKey, url: str, verified: VerifiedCertificate) -> CrlIndex | Verdict:
        now = self._clock()
        with self._lock:
            cached = self._cached.get(key)
        if cached is not None and now < cached.index.next_update + CLOCK_SKEW:
            if cached.refresh_at is not None and now >= cached.refresh_at:
                self._load(key, url, verified)  # in the background; this request does not wait
            return cached.index
        failed = self._failures.get(key, now)
        if failed is not None:
            return failed
        load = self._load(key, url, verified)
        # One bound for the whole wait: download, parse and index (SPEC §3 CRL_TIMEOUT_SECONDS).
        if not load.done.wait(self.timeout_seconds) or load.result is None:
            return Verdict(Status.UNAVAILABLE, f"CRL from {redact_url(url)} not downloaded and "
                                               f"checked within {self.timeout_seconds:.2f}s")
        return load.result

    def _load(self, key: CacheKey, url: str, verified: VerifiedCertificate) -> _Load:
        """The load under way for ``key``, or a new one started on its own thread."""
        with self._lock:
            load = self._loads.get(key)
            if load is not None:
                return load
            load = self._loads[key] = _Load()
            self._downloads += 1
            thread = threading.Thread(target=self._run, args=(key, url, verified, load),
                                      name="crl-load", daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return load

    def _run(self, key: CacheKey, url: str, verified: VerifiedCertificate, load: _Load) -> None:
        try:
            result = self._download(url, verified)
            if isinstance(result, CrlIndex):
                result = self._store(key, url, result)
        except Exception as exc:  # a bug must still end the load, with a verdict
            result = Verdict(Status.UNAVAILABLE, f"CRL load failed ({type(exc).__name__})")
        if isinstance(result, Verdict):
            self._failed(key, result)
        load.result = result
        with self._lock:
            del self._loads[key]
        load.done.set()

    def _download(self, url: str, verified: VerifiedCertificate) -> CrlIndex | Verdict:
        try:
            reply = self._fetcher.get(url, timeout=self.timeout_seconds, max_bytes=self.max_bytes,
                                      from_certificate=self.crl_url is None, accept=CRL_ACCEPT)
        except FetchError as exc:
            return Verdict(Status.UNAVAILABLE, f"CRL download from {redact_url(url)}: {exc}")
        try:
            return validate_crl(reply.body, verified.issuer, self._clock(), self._anchors)
        except CrlInvalid as exc:
            return Verdict(Status.UNAVAILABLE, f"{exc} ({redact_url(url)})")

    def _store(self, key: CacheKey, url: str, index: CrlIndex) -> CrlIndex | Verdict:
        """Cache ``index`` unless it is older than the CRL cached (SPEC §2a: no going back)."""
        now = self._clock()
        with self._lock:
            newest = self._newest.get(key)
            if newest is not None and index.is_older_than(newest):
                return Verdict(Status.UNAVAILABLE, (
                    f"CRL from {redact_url(url)} goes back in time: {index.describe()} is older "
                    f"than the {newest.describe()} already seen; not used"))
            self._cached[key] = _Cached(index, self._refresh_time(index, now))
            self._newest.pop(key, None)
            self._newest[key] = _mark(index)
            self._evict(keep=key)
        return index

    def _evict(self, keep: CacheKey) -> None:
        """Within the caps, dropping the CRLs that end first; ``keep`` stays (lock held)."""
        others = sorted((k for k in self._cached if k != keep),
                        key=lambda k: self._cached[k].index.next_update)
        entries = sum(len(cached.index.revoked) for cached in self._cached.values())
        for victim in others:
            if len(self._cached) <= self._max_crls and entries <= self._max_entries:
                break
            entries -= len(self._cached.pop(victim).index.revoked)
        while len(self._newest) > 8 * self._max_crls:  # marks are small; the oldest goes
            del self._newest[next(iter(self._newest))]

    def _failed(self, key: CacheKey, verdict: Verdict) -> None:
        """A failed refresh keeps the cached CRL (and says so); a failed cold load is held."""
        now = self._clock()
        with self._lock:
            cached = self._cached.get(key)
            current = cached is not None and now < cached.index.next_update + CLOCK_SKEW
            if cached is not None and current:
                retry = now + self._refresh_retry
                self._cached[key] = _Cached(cached.index,
                                            retry if retry < cached.index.next_update else None)
        if cached is None or not current:
            self._failures.put(key, verdict, now + self._failure_hold)
            return
        logger.warning("CRL refresh failed, keeping the cached CRL until its nextUpdate %s: %s",
                       iso(cached.index.next_update), verdict.detail)

    def _refresh_time(self, index: CrlIndex, now: datetime) -> datetime | None:
        """When to fetch the next CRL: once ``refresh_fraction`` of this one's life has passed
        (not sooner than ``refresh_retry_seconds`` from now), and only before its nextUpdate."""
        life = index.next_update - index.this_update
        at = max(index.this_update + life * self._refresh_fraction, now + self._refresh_retry)
        return at if at < index.next_update else None

    def wait_for_refreshes(self, timeout: float) -> bool:
        """Wait for loads under way (background refreshes too) to end: tests, the benchmark."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
        return not any(thread.is_alive() for thread in threads)


def _mark(index: CrlIndex) -> CrlIndex:
    """What going back in time is judged by: the CRL's number and dates, without its entries."""
    return CrlIndex(index.this_update, index.next_update, {}, None, index.number)
