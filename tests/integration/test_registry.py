"""The Table registry against Azurite, the match rules, and the read cache."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableServiceClient

from certsas.errors import CertificateNotRegistered, DependencyUnavailable
from certsas.registration import Registration, match_registration
from certsas.registry import CachedRegistry, TableRegistry
from tests.support.azurite import Azurite, free_port
from tests.support.pki import Pki


@pytest.fixture
def registry(azurite: Azurite, fresh_tables: tuple[str, str]) -> TableRegistry:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    return TableRegistry(service.create_table(fresh_tables[0]))


def test_round_trip_and_point_read(registry: TableRegistry, pki: Pki) -> None:
    registration = Registration.for_certificate(
        pki.client.certificate, container="reports", permissions="lr", prefix="p/",
        max_ttl_minutes=20, description="team A")
    registry.add(registration)
    stored = registry.get(registration.thumbprint)
    assert stored == registration
    assert stored is not None and stored.grants[0].permissions == "rl"
    assert len(stored.thumbprint_sha1) == 40
    assert registry.get("0" * 64) is None
    assert [r.thumbprint for r in registry.scan()] == [registration.thumbprint]


def test_enable_disable_remove(registry: TableRegistry, pki: Pki) -> None:
    registration = Registration.for_certificate(pki.client.certificate, container="reports")
    registry.add(registration)
    assert registry.set_enabled(registration.thumbprint, False).enabled is False
    assert registry.get(registration.thumbprint).enabled is False  # type: ignore[union-attr]
    registry.remove(registration.thumbprint)
    assert registry.get(registration.thumbprint) is None
    with pytest.raises(KeyError):
        registry.remove(registration.thumbprint)


def test_malformed_entity_is_not_registered(registry: TableRegistry, pki: Pki) -> None:
    registration = Registration.for_certificate(pki.client.certificate, container="reports")
    entity = registration.to_entity()
    del entity["CertificatePem"]
    registry._table.upsert_entity(entity)
    with pytest.raises(CertificateNotRegistered):
        registry.get(registration.thumbprint)


def test_unreachable_table_is_dependency_unavailable(azurite: Azurite) -> None:
    from azure.data.tables import TableClient

    dead = azurite.connection_string.replace(str(azurite.table_port), str(free_port()))
    table = TableClient.from_connection_string(dead, table_name="x", retry_total=0)
    with pytest.raises(DependencyUnavailable):
        TableRegistry(table).get("A" * 64)


# --- matching -----------------------------------------------------------------------


def test_every_field_must_match(pki: Pki) -> None:
    cert, der = pki.client.certificate, pki.client.der
    good = Registration.for_certificate(cert, container="reports")
    assert match_registration(good, cert, der) is good
    other = pki.issuing.issue("client-one")
    bad = {
        "disabled": replace(good, enabled=False),
        "other bytes": replace(good, certificate_pem=other.pem.decode()),
        "other issuer": replace(good, issuer="CN=someone else"),
        "other CN": replace(good, subject_cn="client-two"),
        "other notBefore": replace(good, not_before=good.not_before - timedelta(seconds=1)),
        "other notAfter": replace(good, not_after=good.not_after + timedelta(days=1)),
    }
    for registration in bad.values():
        with pytest.raises(CertificateNotRegistered):
            match_registration(registration, cert, der)
    with pytest.raises(CertificateNotRegistered):
        match_registration(None, cert, der)


# --- cache --------------------------------------------------------------------------


class CountingRegistry:
    def __init__(self, registration: Registration | None) -> None:
        self.registration = registration
        self.reads = 0

    def get(self, thumbprint: str) -> Registration | None:
        self.reads += 1
        return self.registration


def test_cache_reuses_reads_for_its_lifetime(pki: Pki) -> None:
    inner = CountingRegistry(Registration.for_certificate(pki.client.certificate, container="c"))
    now = [datetime.now(UTC)]
    cached = CachedRegistry(inner, 30, clock=lambda: now[0])
    for _ in range(5):
        cached.get("T")
    assert inner.reads == 1
    # A disabled registration takes effect within the cache lifetime.
    inner.registration = replace(inner.registration, enabled=False)  # type: ignore[type-var]
    now[0] += timedelta(seconds=31)
    assert cached.get("T").enabled is False  # type: ignore[union-attr]
    assert inner.reads == 2


def test_zero_seconds_reads_every_time(pki: Pki) -> None:
    inner = CountingRegistry(None)
    cached = CachedRegistry(inner, 0)
    for _ in range(3):
        cached.get("T")
    assert inner.reads == 3


def test_failures_are_not_cached() -> None:
    class Failing:
        calls = 0

        def get(self, thumbprint: str) -> Registration | None:
            self.calls += 1
            raise DependencyUnavailable("down")

    inner = Failing()
    cached = CachedRegistry(inner, 30)
    for _ in range(2):
        with pytest.raises(DependencyUnavailable):
            cached.get("T")
    assert inner.calls == 2


def test_cache_is_bounded() -> None:
    cached = CachedRegistry(CountingRegistry(None), 30, max_entries=5)
    for i in range(20):
        cached.get(str(i))
    assert len(cached._cache) == 5
