"""Assembling the broker from settings, once per process.

Nothing here runs at import: the first request (or the first caller of
:func:`get_broker`) builds the clients, and every later invocation reuses them.
Every choice the settings make (which signer, revocation or not) is made here once,
so the parts themselves never read settings.
"""

from __future__ import annotations

import os
import threading

from certsas.audit import GroupCommitAuditSink, TableAuditSink
from certsas.broker import TokenBroker
from certsas.clock import Clock, system_clock
from certsas.config import AccountKeyAccess, RevocationMode, RevocationSettings, Settings
from certsas.ocsp.checker import OcspChecker
from certsas.registry import CachedRegistry, TableRegistryReader
from certsas.revocation import NotChecked, RevocationChecker
from certsas.sas import AccountKeySigner, SasSigner, UserDelegationSigner
from certsas.storage import StorageClients
from certsas.verification import ChainValidator


def build_revocation(settings: RevocationSettings, clock: Clock = system_clock) -> RevocationChecker:
    if settings.mode is RevocationMode.OFF:
        return NotChecked()
    return OcspChecker(
        mode=settings.mode,
        responder_url=settings.ocsp_responder_url,
        timeout_seconds=settings.ocsp_timeout_seconds,
        cache_max_seconds=settings.ocsp_cache_max_seconds,
        clock=clock,
    )


def build_signer(settings: Settings, clients: StorageClients) -> SasSigner:
    access = settings.storage.access
    if isinstance(access, AccountKeyAccess):
        return AccountKeySigner(access.account_name, access.account_key, access.blob_endpoint)
    return UserDelegationSigner(
        access.account_name, access.blob_endpoint, clients.blob_service(),
        max_ttl_minutes=settings.sas_max_ttl_minutes,
    )


def build_broker(settings: Settings, *, clock: Clock = system_clock) -> TokenBroker:
    clients = StorageClients(settings.storage)
    registry = CachedRegistry(
        TableRegistryReader(clients.hot_table(settings.storage.cert_table)),
        settings.registry_cache_seconds, clock=clock,
    )
    return TokenBroker(
        header_name=settings.client_cert_header,
        validator=ChainValidator(settings.trust_anchors, clock=clock),
        registry=registry,
        revocation=build_revocation(settings.revocation, clock),
        signer=build_signer(settings, clients),
        audit=GroupCommitAuditSink(TableAuditSink(clients.hot_table(settings.storage.audit_table))),
        default_ttl_minutes=settings.sas_default_ttl_minutes,
        max_ttl_minutes=settings.sas_max_ttl_minutes,
        clock=clock,
    )


_lock = threading.Lock()
_broker: TokenBroker | None = None


def get_broker() -> TokenBroker:
    """The process-wide broker, built from the environment on first use."""
    global _broker
    if _broker is None:
        with _lock:
            if _broker is None:
                _broker = build_broker(Settings.from_env(os.environ))
    return _broker


def reset_broker() -> None:
    """Forget the process-wide broker (tests that change settings)."""
    global _broker
    with _lock:
        _broker = None
