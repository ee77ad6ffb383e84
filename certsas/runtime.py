"""Assembling the broker from settings, once per process.

Nothing here runs at import: the first request (or the first caller of
:func:`get_broker`) builds the clients, and every later invocation reuses them.
"""

from __future__ import annotations

import os
import threading

from certsas.audit import TableAuditSink
from certsas.broker import TokenBroker
from certsas.clock import Clock, system_clock
from certsas.config import AccountKeyAccess, OcspMode, Settings
from certsas.registry import CachedRegistry, TableRegistry
from certsas.revocation import NotChecked, RevocationChecker
from certsas.sas import AccountKeySigner, SasSigner, UserDelegationSigner
from certsas.storage import StorageClients
from certsas.verification import ChainValidator


def build_revocation(settings: Settings, clock: Clock = system_clock) -> RevocationChecker:
    if settings.ocsp_mode is OcspMode.OFF:
        return NotChecked()
    from certsas.ocsp import OcspChecker

    return OcspChecker.from_settings(settings, clock=clock)


def build_signer(settings: Settings, clients: StorageClients) -> SasSigner:
    access = settings.storage
    if isinstance(access, AccountKeyAccess):
        return AccountKeySigner(access.account_name, access.account_key, access.blob_endpoint)
    return UserDelegationSigner(
        access.account_name, access.blob_endpoint, clients.blob_service(),
        max_ttl_minutes=settings.sas_max_ttl_minutes,
    )


def build_broker(settings: Settings, *, clock: Clock = system_clock) -> TokenBroker:
    clients = StorageClients(settings.storage, timeout_seconds=settings.storage_timeout_seconds)
    registry = CachedRegistry(
        TableRegistry(clients.table(settings.cert_table)), settings.registry_cache_seconds,
        clock=clock,
    )
    return TokenBroker(
        header_name=settings.client_cert_header,
        validator=ChainValidator(settings.trust_anchors, clock=clock),
        registry=registry,
        revocation=build_revocation(settings, clock),
        signer=build_signer(settings, clients),
        audit=TableAuditSink(clients.table(settings.audit_table)),
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
