"""The measured scenarios: the floor, the parts of the token path, and loads through the function.

Token requests go where the Functions host sends them: the ``token`` user function
of ``function_app.app``, an ``azure.functions.HttpRequest`` in, an ``HttpResponse``
out. A 200 is the correctness check of every call; timings are only reported.
"""

from __future__ import annotations

import cProfile
import dataclasses
import io
import json
import pstats
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import azure.functions as func

from bench.measure import Summary, repeat, run_serial, run_threaded
from bench.services import CONTAINER, HEADER, Services
from certsas import runtime
from certsas.accounts import AccountKeyAccess
from certsas.audit import AuditRecord, TableAuditSink
from certsas.broker import TokenBroker
from certsas.clientcert import PresentedCertificate, read_forwarded_certificate
from certsas.clock import system_clock
from certsas.config import Settings
from certsas.ocsp.checker import OcspChecker
from certsas.registry import TableRegistryReader
from certsas.rotation import Rotator
from certsas.sas import AccountKeySigner
from certsas.scope import Grant
from certsas.storage import StorageClients
from certsas.verification import ChainValidator

ENDPOINT = "http://localhost:7071/api/token"
GRANT = Grant(container=CONTAINER, blob=None, permissions="rl", ttl_minutes=15)


class _Context:
    invocation_id = "bench"


class _NullAudit:
    """Diagnostic only: an audit sink that keeps nothing (never a configuration of the app)."""

    def record(self, record: AuditRecord) -> None:
        return None


def _account_key_signer(settings: Settings) -> AccountKeySigner:
    access = settings.storage.access
    assert isinstance(access, AccountKeyAccess)
    return AccountKeySigner(access.account_name, access.account_key, access.blob_endpoint)


# --- no I/O --------------------------------------------------------------------------


def floor_work(services: Services, settings: Settings) -> Callable[[], object]:
    """Parse + thumbprint + chain verification (no reuse) + SAS signing: the least any design does."""
    der = services.client.der
    validator = ChainValidator(settings.trust_anchors, cache_seconds=0)
    signer = _account_key_signer(settings)

    def work() -> object:
        presented = PresentedCertificate.from_der(der)
        validator.verify(presented)
        return signer.sign(GRANT, system_clock())

    return work


def components(services: Services, settings: Settings, *, cheap: int, io_count: int
               ) -> dict[str, Summary]:
    """Each part of the token path alone, the I/O ones against the real Azurite and responder."""
    der = services.client.der
    presented = PresentedCertificate.from_der(der)
    validator = ChainValidator(settings.trust_anchors, cache_seconds=0)
    verified = validator.verify(presented)
    signer = _account_key_signer(settings)
    clients = StorageClients(settings.storage)
    # The clients the app's broker uses (runtime.build_broker), not the CLI's.
    registry = TableRegistryReader(clients.hot_table(settings.storage.cert_table))
    audit = TableAuditSink(clients.hot_table(settings.storage.audit_table))
    ocsp = OcspChecker(responder_url=None,
                       timeout_seconds=settings.revocation.ocsp_timeout_seconds, cache_max_seconds=0)
    now = system_clock()
    signed = signer.sign(GRANT, now)
    record = AuditRecord(time=now, request_id="bench", thumbprint=presented.thumbprint,
                         subject=presented.subject, container=CONTAINER, blob=None,
                         permissions="rl", expires_on=signed.expires_on, client_address=None,
                         signature_sha256=signed.signature_sha256)
    headers = services.headers
    # One untimed call each opens the connections.
    registry.get(presented.thumbprint)
    audit.record(record)
    ocsp.verdict(verified)
    return {
        "header_decode_parse_thumbprint": repeat(lambda: read_forwarded_certificate(headers, HEADER),
                                                 cheap),
        "parse_thumbprint": repeat(lambda: PresentedCertificate.from_der(der), cheap),
        "chain_verify": repeat(lambda: validator.verify(presented), cheap),
        "sas_sign": repeat(lambda: signer.sign(GRANT, system_clock()), cheap),
        "table_point_read": repeat(lambda: registry.get(presented.thumbprint), io_count),
        "audit_insert": repeat(lambda: audit.record(record), io_count),
        "ocsp_round_trip": repeat(lambda: ocsp.verdict(verified), io_count),
    }


# --- through the function ------------------------------------------------------------


Handler = Callable[..., func.HttpResponse]


def post(handler: Handler, url: str, headers: dict[str, str], body: bytes) -> func.HttpResponse:
    """One POST through a user function, as the Functions host hands it over."""
    request = func.HttpRequest(method="POST", url=url, headers=dict(headers), params={},
                               body=body)
    return handler(request, _Context())


class TokenCall:
    """One ``POST /api/token`` through the user function; True for a 200."""

    def __init__(self, handler: Handler, headers: dict[str, str], body: bytes = b"") -> None:
        self._handler = handler
        self._headers = headers
        self._body = body

    def to(self, headers: dict[str, str], body: bytes = b"") -> TokenCall:
        """The same function called with another certificate's headers and this body."""
        return TokenCall(self._handler, headers, body)

    def response(self) -> func.HttpResponse:
        return post(self._handler, ENDPOINT, self._headers, self._body)

    def __call__(self) -> bool:
        return bool(self.response().status_code == 200)

    def check_once(self) -> None:
        """A full check of one answer (untimed): 200 with a token in the documented shape."""
        response = self.response()
        body: dict[str, Any] = json.loads(response.get_body())
        if response.status_code != 200 or "sig=" not in str(body.get("token")):
            raise RuntimeError(f"token request failed: {response.status_code} {body.get('error')}")


def install(broker: TokenBroker) -> None:
    """Make ``broker`` the process-wide one that ``get_broker`` returns (as the tests do)."""
    runtime._broker = broker


def install_rotator(rotator: Rotator | None) -> None:
    """Make ``rotator`` the one ``get_rotator`` returns; None: built again on next use."""
    runtime._rotator = rotator


def naive_broker(settings: Settings) -> TokenBroker:
    """The per-request design: no registry, verification or OCSP reuse; clients still shared."""
    uncached = dataclasses.replace(
        settings, registry_cache_seconds=0,
        revocation=dataclasses.replace(settings.revocation, ocsp_cache_max_seconds=0))
    broker = runtime.build_broker(uncached)
    return dataclasses.replace(broker, validator=ChainValidator(settings.trust_anchors,
                                                                cache_seconds=0))


def without_audit(broker: TokenBroker) -> TokenBroker:
    return dataclasses.replace(broker, audit=_NullAudit())


@dataclasses.dataclass(frozen=True)
class Load:
    summary: Summary
    ocsp_requests: int


def load(call: TokenCall, services: Services, count: int, threads: int) -> Load:
    before = services.responder.request_count
    summary = run_serial(call, count) if threads == 1 else run_threaded(call, count, threads)
    return Load(summary, services.responder.request_count - before)


def warm_up(call: TokenCall, count: int, threads: int) -> None:
    """Fill caches and connection pools: serially, then with every thread at once."""
    call.check_once()
    for _ in range(count):
        call()
    run_threaded(call, threads * 2, threads)


def profile_one(call: TokenCall, *, lines: int = 15) -> str:
    """cProfile of one request, top ``lines`` by cumulative time, paths shortened."""
    profiler = cProfile.Profile()
    profiler.enable()
    call()
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(lines)
    text = stream.getvalue()
    for prefix in sorted({p for p in sys.path if p.endswith("site-packages")}, key=len, reverse=True):
        text = text.replace(prefix + "/", "")
    return text.replace(str(Path.cwd()) + "/", "").strip()
