"""CRL figures for ``make bench`` (issue 12): a 100,000-entry CRL served on 127.0.0.1.

- first use: download on loopback, parse, validate, index, through a fresh ``CrlChecker``
  (median of 3); the memory it adds, as the tracemalloc peak of one first use (Python
  allocations) and the growth of the process's resident set while the index is kept
  (everything, the Rust side of ``cryptography`` included);
- warm token through the function with REVOCATION_SOURCES=crl against the same run with
  revocation off, interleaved (off, crl, off, crl), and the warm CRL check alone.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import statistics
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from bench.measure import repeat, run_serial
from bench.scenarios import without_audit
from bench.services import Services
from certsas.clientcert import PresentedCertificate
from certsas.config import RevocationMode, Settings
from certsas.crl.checker import CrlChecker
from certsas.devtools.crl_server import CrlServer
from certsas.devtools.pki import CertificateAuthority
from certsas.netfetch import NetFetcher
from certsas.revocation import RevocationPolicy, Status
from certsas.runtime import build_broker
from certsas.verification import ChainValidator

ENTRIES = 100_000
ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")


def _der(tag: int, content: bytes) -> bytes:
    if len(content) < 0x80:
        return bytes([tag, len(content)]) + content
    size = (len(content).bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + len(content).to_bytes(size, "big") + content


def _time(instant: datetime) -> bytes:
    return _der(0x17, f"{instant:%y%m%d%H%M%S}Z".encode())


def big_crl(ca: CertificateAuthority, entries: int, first_serial: int) -> bytes:
    """A CRL of ``ca`` (an EC key) listing ``entries`` serials from ``first_serial`` on, 7919
    apart, DER by hand: cryptography's builder copies its list on every add, quadratic here."""
    key = ca.key
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError("the CA is expected to have an EC key")
    now = datetime.now(UTC)
    revoked_at = _time(now - timedelta(days=1))
    serials = (first_serial + n * 7919 for n in range(entries))
    body = b"".join(_der(0x30, _der(0x02, s.to_bytes(s.bit_length() // 8 + 1, "big")) + revoked_at)
                    for s in serials)
    tbs = _der(0x30, _der(0x02, b"\x01") + ECDSA_SHA256
               + ca.certificate.subject.public_bytes()
               + _time(now - timedelta(minutes=1)) + _time(now + timedelta(days=1))
               + _der(0x30, body))
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return _der(0x30, tbs + ECDSA_SHA256 + _der(0x03, b"\x00" + signature))


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(services: Services, settings: Settings, call: Any, install: Any, count: int,
            entries: int = ENTRIES) -> dict[str, Any]:
    """The CRL figures; ``call`` is a token call through the function, ``install`` sets the broker.

    The warm comparison runs twice: as the app runs (with the audit insert, whose jitter on
    Azurite is milliseconds, far above the 0.05 ms asked about) and without the audit write
    (the rest of the token path, where a 0.05 ms difference can be seen at all).
    """
    # None of them the client's.
    der = big_crl(services.issuing, entries, services.client.certificate.serial_number + 1)
    presented = PresentedCertificate.from_der(services.client.der)
    verified = ChainValidator(settings.trust_anchors).verify(presented)
    with CrlServer() as server:
        server.publish("/big.crl", der)
        url = server.url("/big.crl")

        def fresh() -> CrlChecker:
            return CrlChecker(crl_url=url, timeout_seconds=10.0, max_bytes=20 * 1024 * 1024,
                              fetcher=NetFetcher(blocked_networks=()))

        first_use = []
        for _ in range(3):
            checker = fresh()
            started = time.perf_counter()
            if checker.verdict(verified).status is not Status.GOOD:
                raise RuntimeError("the big CRL did not answer good")
            first_use.append((time.perf_counter() - started) * 1000)
        del checker
        gc.collect()
        rss_before = _rss_bytes()
        kept = fresh()
        kept.verdict(verified)
        rss_added = _rss_bytes() - rss_before
        tracemalloc.start()
        fresh().verdict(verified)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

        policy = RevocationPolicy(RevocationMode.REQUIRE, [kept])
        check_alone = repeat(lambda: policy.check(verified), 5000)
        off = build_broker(dataclasses.replace(
            settings, revocation=dataclasses.replace(settings.revocation, mode=RevocationMode.OFF)))
        brokers = {"off": off, "crl": dataclasses.replace(off, revocation=policy),
                   "off_no_audit": without_audit(off),
                   "crl_no_audit": without_audit(dataclasses.replace(off, revocation=policy))}
        p50: dict[str, list[float]] = {name: [] for name in brokers}
        # Interleaved, and in mirrored order every other round (off, crl, crl, off, ...), so
        # drift on a shared machine hits both alike.
        for turn in range(4):
            names = list(brokers) if turn % 2 == 0 else list(reversed(brokers))
            for name in names:
                broker = brokers[name]
                install(broker)
                for _ in range(50):
                    call()
                p50[name].append(run_serial(call, count).p50_ns / 1000)
        downloads = kept.downloads
    off_p50, crl_p50 = statistics.median(p50["off"]), statistics.median(p50["crl"])
    bare_off = statistics.median(p50["off_no_audit"])
    bare_crl = statistics.median(p50["crl_no_audit"])
    return {
        "entries": entries,
        "crl_bytes": len(der),
        "first_use_ms": [round(ms, 1) for ms in first_use],
        "first_use_median_ms": round(statistics.median(first_use), 1),
        "memory_tracemalloc_peak_mb": round(peak / 1e6, 1),
        "memory_rss_added_mb": round(rss_added / 1e6, 1),
        "warm_token_p50_us": {"revocation_off": round(off_p50, 1), "crl": round(crl_p50, 1),
                              "rounds": p50},
        "warm_token_p50_difference_ms": round((crl_p50 - off_p50) / 1000, 4),
        "warm_token_without_audit_write_p50_us": {"revocation_off": round(bare_off, 1),
                                                  "crl": round(bare_crl, 1)},
        "warm_token_without_audit_write_p50_difference_ms": round((bare_crl - bare_off) / 1000, 4),
        "warm_crl_check_alone_p50_us": round(check_alone.p50_ns / 1000, 2),
        "downloads_during_warm_runs": downloads,
        "targets": {"first_use_ms": "<= 1500", "memory_mb": "<= 64",
                    "warm_p50_difference_ms": "<= 0.05"},
    }
