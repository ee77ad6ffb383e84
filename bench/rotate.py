"""``POST /api/rotate`` (SPEC §4a) through the function, against Azurite and the OCSP responder.

Each rotation uses its successor up (a second call with it is "already registered"), so
everything is made before the clock starts: per key type, ``count`` certificates
registered with rotation allowed, a successor for each and the proof signed by the
successor's key (tests/support/rotation.py, as a client makes it). The certificates of a
key type share one key, and their successors another: the server's work per call is the
same for any key (nothing is cached by key), and RSA keys are slow to make.

Each current certificate first gets one token, as a partner that rotates has been getting
tokens with it: its chain, registration and OCSP answer are then in the instance's caches,
as they are when a partner rotates ahead of its certificate's end. The rotation itself
then verifies the successor's chain and proof, reads the registry for it (a miss), asks
the responder about it, inserts the registration and the audit record. The key types
take turns call by call; every answer must be a 201 naming the successor and the
certificate it succeeds.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import azure.functions as func
from azure.data.tables import TableServiceClient

from bench.measure import Summary
from bench.scenarios import Handler, TokenCall, install, install_rotator, post
from bench.services import CONTAINER, Services, headers_of
from certsas.config import Settings
from certsas.devtools.pki import new_leaf_key
from certsas.registration import Registration
from certsas.registry import TableRegistry
from certsas.runtime import build_broker, build_rotator, get_broker
from certsas.thumbprints import sha256_thumbprint
from tests.support.rotation import rotate_body

ENDPOINT = "http://localhost:7071/api/rotate"
KINDS = {"rsa": "rsa", "ecdsa": "ec", "ed25519": "ed25519"}  # name in results: new_leaf_key's


@dataclasses.dataclass(frozen=True)
class Counts:
    per_key_type: int = 100  # timed rotations
    warmup: int = 5  # untimed rotations first, per key type


@dataclasses.dataclass(frozen=True)
class Prepared:
    """One rotation ready to send: the current certificate's headers, the body, and what
    the answer must say."""

    kind: str
    headers: dict[str, str]
    body: bytes
    current: str
    successor: str


def prepare(services: Services, registry: TableRegistry, token: TokenCall, kind: str,
            count: int) -> list[Prepared]:
    current_key, successor_key = new_leaf_key(KINDS[kind]), new_leaf_key(KINDS[kind])
    prepared = []
    for index in range(count):
        current = services.issuing.issue(f"certsas-bench-rotate-{kind}-{index}",
                                          ocsp_url=services.responder.url, key=current_key)
        registry.put(Registration.for_certificate(current.certificate, container=CONTAINER,
                                                  allow_rotation=True))
        headers = headers_of(current)
        token.to(headers).check_once()
        successor = services.issuing.successor(current, key=successor_key)
        prepared.append(Prepared(kind, headers, rotate_body(current, successor),
                                 sha256_thumbprint(current.der),
                                 sha256_thumbprint(successor.der)))
    return prepared


def rotated(response: func.HttpResponse, item: Prepared) -> bool:
    """The correctness check: 201, naming the successor and the certificate it succeeds."""
    if response.status_code != 201:
        return False
    body = json.loads(response.get_body())
    return bool(body.get("thumbprint") == item.successor
                and body.get("rotated_from") == item.current)


def measure(services: Services, settings: Settings, token: TokenCall, handler: Handler,
            counts: Counts) -> dict[str, Any]:
    """The rotate call's latency per key type; the broker that was installed is installed
    again afterwards (and the rotator forgotten)."""
    previous = get_broker()
    broker = build_broker(settings)
    install(broker)
    install_rotator(build_rotator(settings, broker))
    tables = TableServiceClient.from_connection_string(services.azurite.connection_string)
    registry = TableRegistry(tables.get_table_client(services.cert_table))
    started = time.monotonic()
    try:
        batches = {kind: prepare(services, registry, token, kind, counts.warmup
                                 + counts.per_key_type) for kind in KINDS}
        prepared_seconds = time.monotonic() - started
        for kind in KINDS:
            for item in batches[kind][:counts.warmup]:
                if not rotated(post(handler, ENDPOINT, item.headers, item.body), item):
                    raise RuntimeError(f"an untimed {kind} rotation failed")
        before = services.responder.request_count
        timed = [batch[counts.warmup:] for batch in batches.values()]
        # Turn about, call by call: a burst of other work falls on every key type alike.
        latencies: dict[str, list[int]] = {kind: [] for kind in KINDS}
        errors: dict[str, list[str]] = {kind: [] for kind in KINDS}
        for items in zip(*timed, strict=True):
            for item in items:
                elapsed, error = _timed(handler, item)
                latencies[item.kind].append(elapsed)
                if error is not None:
                    errors[item.kind].append(error)
        ocsp_requests = services.responder.request_count - before
    finally:
        install(previous)
        install_rotator(None)
    summaries = {kind: Summary.of(latencies[kind], errors=len(errors[kind]), threads=1,
                                  wall_ns=sum(latencies[kind]),
                                  first_error=errors[kind][0] if errors[kind] else None)
                 for kind in KINDS}
    return {
        "counts": dataclasses.asdict(counts),
        "key_types": {kind: {**summary.to_json(),
                             **({"first_error": summary.first_error} if summary.errors else {})}
                      for kind, summary in summaries.items()},
        "ocsp_requests": ocsp_requests,
        "preparation_seconds": round(prepared_seconds, 1),
    }


def _timed(handler: Handler, item: Prepared) -> tuple[int, str | None]:
    started = time.perf_counter_ns()
    try:
        response = post(handler, ENDPOINT, item.headers, item.body)
    except Exception as exc:  # counted and reported, never hidden
        return time.perf_counter_ns() - started, type(exc).__name__
    elapsed = time.perf_counter_ns() - started
    if rotated(response, item):
        return elapsed, None
    return elapsed, f"status {response.status_code}"


def error_count(results: dict[str, Any]) -> int:
    return sum(int(row["errors"]) for row in results["rotate"]["key_types"].values())


def table(figures: dict[str, Any]) -> str:
    lines = ["", f"{'POST /api/rotate through the function, 1 thread':<44}{'calls':>9}"
                 f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}"]
    for kind, row in figures["key_types"].items():
        lines.append(f"  {kind + ' successor':<42}{row['requests']:>9}"
                     f"{row['p50_us'] / 1000:>9.2f}{row['p95_us'] / 1000:>9.2f}"
                     f"{row['p99_us'] / 1000:>9.2f}{row['errors']:>8}")
    lines.append(f"  OCSP requests while timed: {figures['ocsp_requests']} "
                 f"(made ready in {figures['preparation_seconds']} s, untimed)")
    return "\n".join(lines)
