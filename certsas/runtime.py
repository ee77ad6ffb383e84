"""Reading the settings and assembling the broker, once per process.

:func:`start` reads and checks the settings once (function_app.py calls it at import)
and logs one start-up line: ``certsas startup {json}``, INFO when the settings are
usable, ERROR naming every problem when not (SPEC §3). A misconfigured app still
starts: its functions index, health says ``misconfigured``, and :func:`settings` and
:func:`get_broker` raise :class:`ConfigurationErrors`, which certsas.http answers as
``503 configuration_error`` for any endpoint that asks for them.

Nothing here runs at import: the first request (or the first caller of
:func:`get_broker`) builds the clients, and every later invocation reuses them.
Every choice the settings make (which signer, revocation or not) is made here once,
so the parts themselves never read settings.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509

from certsas import expiry
from certsas.accounts import AccountKeyAccess
from certsas.audit import GroupCommitAuditSink, TableAuditSink
from certsas.broker import TokenBroker
from certsas.clock import Clock, system_clock
from certsas.config import (
    DEFAULT_EXPIRY_CHECK_SCHEDULE,
    RevocationMode,
    RevocationSettings,
    RevocationSource,
    Settings,
    expiry_check_schedule,
)
from certsas.crl.checker import CrlChecker
from certsas.epoch import EpochWatch
from certsas.errors import ConfigurationError, ConfigurationErrors
from certsas.netfetch import NetFetcher
from certsas.ocsp.checker import OcspChecker
from certsas.ocsp.fetch import HttpOcspFetcher
from certsas.registration import Registration
from certsas.registry import CachedRegistry, TableRegistry, TableRegistryReader, Unreadable
from certsas.revocation import NotChecked, RevocationChecker, RevocationPolicy
from certsas.revocation import RevocationSource as Source
from certsas.rotation import Rotator, TableRotationAudit
from certsas.sas import AccountKeySigner, DelegationKeySource, SasSigner, UserDelegationSigner
from certsas.storage import StorageClients
from certsas.tables import EntityReader
from certsas.verification import ChainValidator

logger = logging.getLogger("certsas.runtime")


def build_revocation(settings: RevocationSettings, clock: Clock = system_clock,
                     anchors: tuple[x509.Certificate, ...] = ()) -> RevocationChecker:
    """SPEC §2a: off never calls out; otherwise the sources, in REVOCATION_SOURCES order.
    ``anchors`` (TRUSTED_CA_CERTS) may hold a CA's renewed certificate that signs its CRLs."""
    if settings.mode is RevocationMode.OFF:
        return NotChecked()
    fetcher = NetFetcher(settings.blocked_networks)
    sources: list[Source] = []
    for source in settings.sources:
        if source is RevocationSource.OCSP:
            sources.append(OcspChecker(
                responder_url=settings.ocsp_responder_url,
                timeout_seconds=settings.ocsp_timeout_seconds,
                cache_max_seconds=settings.ocsp_cache_max_seconds,
                fetcher=HttpOcspFetcher(fetcher),
                clock=clock,
            ))
        else:
            sources.append(CrlChecker(
                crl_url=settings.crl_url,
                timeout_seconds=settings.crl_timeout_seconds,
                max_bytes=settings.crl_max_bytes,
                fetcher=fetcher,
                clock=clock,
                anchors=anchors,
            ))
    return RevocationPolicy(settings.mode, sources)


class SignerClients(Protocol):
    """What :func:`build_signer` takes from the clients (StorageClients is one): a seam,
    so a test can put a stand-in key source where Entra ID would issue delegation keys."""

    def hot_table(self, name: str) -> EntityReader: ...

    def blob_service(self) -> DelegationKeySource: ...


def build_signer(settings: Settings, clients: SignerClients) -> SasSigner:
    access = settings.storage.access
    if isinstance(access, AccountKeyAccess):
        return AccountKeySigner(access.account_name, access.account_key, access.blob_endpoint)
    epoch = EpochWatch(clients.hot_table(settings.storage.cert_table),
                       settings.registry_cache_seconds)
    return UserDelegationSigner(
        access.account_name, access.blob_endpoint, clients.blob_service(),
        max_ttl_minutes=settings.sas_max_ttl_minutes, epoch=epoch.generation,
    )


def build_broker(settings: Settings, *, clock: Clock = system_clock,
                 clients: StorageClients | None = None) -> TokenBroker:
    clients = clients or StorageClients(settings.storage)
    registry = CachedRegistry(
        TableRegistryReader(clients.hot_table(settings.storage.cert_table)),
        settings.registry_cache_seconds, clock=clock,
    )
    return TokenBroker(
        header_name=settings.client_cert_header,
        validator=ChainValidator(settings.trust_anchors, clock=clock),
        registry=registry,
        revocation=build_revocation(settings.revocation, clock, settings.trust_anchors),
        signer=build_signer(settings, clients),
        audit=GroupCommitAuditSink(TableAuditSink(
            clients.hot_table(settings.storage.audit_table), settings.audit_partitions)),
        default_ttl_minutes=settings.sas_default_ttl_minutes,
        max_ttl_minutes=settings.sas_max_ttl_minutes,
        clock=clock,
    )


def build_rotator(settings: Settings, broker: TokenBroker,
                  clients: StorageClients | None = None) -> Rotator:
    """``/api/rotate`` on top of ``broker`` (its checks, caches and revocation). Registry
    and audit writes go through the SDK's clients: a rotation is rare. ``clients``: the
    broker's, so a process holds one credential and one set of connections."""
    clients = clients or StorageClients(settings.storage)
    return Rotator(broker, TableRegistry(clients.registry_table()),
                   TableRotationAudit(clients.audit_table(), settings.audit_partitions))


def run_expiry_check(env: Mapping[str, str], *, clock: Clock = system_clock
                     ) -> expiry.Summary | None:
    """The daily expiry check (SPEC §5a) with the settings in ``env``: its own storage
    clients (once a day, nothing worth sharing with the token path); never raises."""
    try:
        settings = Settings.from_env(env)
    except Exception as exc:  # checked at start-up already; still, never into the host
        expiry.log_error(exc)
        return None

    def read() -> Iterator[Registration | Unreadable]:
        return TableRegistry(StorageClients(settings.storage).registry_table()).scan()

    return expiry.check(read, settings.trust_anchors, now=clock(),
                        warning_days=settings.expiry_warning_days)


@dataclass(frozen=True)
class Startup:
    """What one process found in its settings: usable settings, or every problem."""

    settings: Settings | None
    problems: tuple[ConfigurationError, ...]
    expiry_check_schedule: str

    @property
    def misconfigured(self) -> tuple[str, ...]:
        """The names of the settings at fault, each once (empty when usable)."""
        return tuple(dict.fromkeys(problem.setting for problem in self.problems))


def read_startup(env: Mapping[str, str]) -> Startup:
    """Check the settings in ``env``; never raises on a setting."""
    try:
        settings: Settings | None = Settings.from_env(env)
        problems: tuple[ConfigurationError, ...] = ()
    except ConfigurationErrors as errors:
        settings, problems = None, errors.errors
    except ConfigurationError as error:
        settings, problems = None, (error,)
    return Startup(settings, problems, timer_schedule(env))


def timer_schedule(env: Mapping[str, str]) -> str:
    """The expiry check's schedule: ``EXPIRY_CHECK_SCHEDULE``, or SPEC §3's default while
    that setting is wrong (the start-up line says which ran), so the timer always indexes."""
    try:
        return expiry_check_schedule(env)
    except ConfigurationError:
        return DEFAULT_EXPIRY_CHECK_SCHEDULE


def log_startup(startup: Startup) -> None:
    """The one start-up line: the witness that the app runs (the silent-check alert reads
    it) and, when misconfigured, every setting at fault and what is wrong with it."""
    fields: dict[str, object] = {
        "status": "misconfigured" if startup.problems else "ok",
        "python": platform.python_version(),
        "expiry_check_schedule": startup.expiry_check_schedule,
    }
    if startup.problems:
        fields["settings"] = list(startup.misconfigured)
        fields["problems"] = [{"setting": p.setting, "problem": p.problem}
                              for p in startup.problems]
    logger.log(logging.ERROR if startup.problems else logging.INFO, "certsas startup %s",
               json.dumps(fields, sort_keys=True), extra={"certsas": fields})


_startup_lock = threading.Lock()
_startup: Startup | None = None


def start(env: Mapping[str, str] | None = None) -> Startup:
    """The process's settings, read from ``env`` (the environment) and logged on first call."""
    global _startup
    if _startup is None:
        with _startup_lock:
            if _startup is None:
                _startup = read_startup(os.environ if env is None else env)
                log_startup(_startup)
    return _startup


def settings() -> Settings:
    """The process's checked settings; :class:`ConfigurationErrors` (a new one each call,
    so no traceback grows) while they are unusable."""
    startup = start()
    if startup.settings is None:
        raise ConfigurationErrors(startup.problems)
    return startup.settings


_lock = threading.Lock()
_broker: TokenBroker | None = None
_clients: StorageClients | None = None  # the broker's, shared with the rotator


def get_broker() -> TokenBroker:
    """The process-wide broker, built on first use; raises :class:`ConfigurationErrors`
    while the settings are unusable."""
    global _broker, _clients
    if _broker is None:
        with _lock:
            if _broker is None:
                current = settings()
                _clients = StorageClients(current.storage)
                _broker = build_broker(current, clients=_clients)
    return _broker


_rotator: Rotator | None = None


def get_rotator() -> Rotator:
    """The process-wide rotator, built on the process-wide broker on first use."""
    global _rotator
    if _rotator is None:
        broker = get_broker()
        with _lock:
            if _rotator is None:
                _rotator = build_rotator(settings(), broker, _clients)
    return _rotator


def reset_broker() -> None:
    """Forget the process-wide settings, broker and rotator (tests that change settings)."""
    global _broker, _clients, _rotator, _startup
    with _lock, _startup_lock:
        _broker = None
        _clients = None
        _rotator = None
        _startup = None
