"""Fixtures only: a clean environment, the test PKIs, a real Azurite, OCSP responders, the
served app. What they are built from lives in plain modules under tests/support/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from certsas.devtools.ocsp_responder import OcspResponder
from certsas.devtools.pki import OCSP_SIGNING, CertificateAuthority
from tests.support.azurite import Azurite, free_port
from tests.support.clock import ManualClock
from tests.support.pki import OcspPki, Pki
from tests.support.served import DevFiles, Served, served_app, write_dev_pki

SETTINGS = (
    "TRUSTED_CA_CERTS", "STORAGE_CONNECTION_STRING", "STORAGE_ACCOUNT_NAME", "CERT_TABLE_NAME",
    "AUDIT_TABLE_NAME", "CLIENT_CERT_HEADER", "OCSP_MODE", "REVOCATION_MODE", "REVOCATION_SOURCES",
    "OCSP_RESPONDER_URL", "OCSP_TIMEOUT_SECONDS", "OCSP_CACHE_MAX_SECONDS", "CRL_URL",
    "CRL_TIMEOUT_SECONDS", "CRL_MAX_BYTES", "REVOCATION_BLOCKED_NETWORKS", "EXPIRY_WARNING_DAYS",
    "EXPIRY_CHECK_SCHEDULE", "AUDIT_PARTITIONS", "SAS_DEFAULT_TTL_MINUTES", "SAS_MAX_TTL_MINUTES",
    "REGISTRY_CACHE_SECONDS", "STORAGE_TIMEOUT_SECONDS", "AZURE_CLIENT_ID",
    "AZURE_RESOURCE_MANAGER_URL",
)


@pytest.fixture(autouse=True)
def _clean_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a setting another test (or the developer's shell) left behind."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def pki() -> Pki:
    root = CertificateAuthority.root("certsas test root CA")
    issuing = root.intermediate("certsas test issuing CA")
    return Pki(
        root=root,
        issuing=issuing,
        client=issuing.issue("client-one"),
        stranger=CertificateAuthority.root("certsas test stranger CA"),
    )


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    instance = Azurite(free_port(), free_port(), tmp_path_factory.mktemp("azurite"))
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def fresh_tables() -> tuple[str, str]:
    """Table names no other test uses: registry, audit."""
    suffix = os.urandom(4).hex()
    return f"Certs{suffix}", f"Audit{suffix}"


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> DevFiles:
    """What ``certsas dev-pki`` writes, in a folder (OCSP URL points nowhere)."""
    return write_dev_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, azurite: Azurite, files: DevFiles,
           fresh_tables: tuple[str, str]) -> Iterator[Served]:
    """The app behind ``DevServer``: plain HTTP and the TLS front end, on free ports."""
    with served_app(monkeypatch, azurite, files, fresh_tables) as served:
        yield served


@pytest.fixture(scope="session")
def ocsp_pki(pki: Pki) -> OcspPki:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    return OcspPki(
        root=pki.root,
        issuing=pki.issuing,
        stranger=pki.stranger,
        port=port,
        good=pki.issuing.issue("ocsp-good", ocsp_url=url),
        revoked=pki.issuing.issue("ocsp-revoked", ocsp_url=url),
        unknown=pki.issuing.issue("ocsp-unknown", ocsp_url=url),
        no_aia=pki.issuing.issue("ocsp-no-aia"),
        signer=pki.issuing.issue("ocsp-signer", eku=(OCSP_SIGNING,), ocsp_no_check=True),
    )


@pytest.fixture
def ocsp_clock() -> ManualClock:
    """Now, frozen for the test; responder and checker share it."""
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def ocsp_responder(ocsp_pki: OcspPki, ocsp_clock: ManualClock) -> Iterator[OcspResponder]:
    """Our responder on ``ocsp_pki.url``, signing as the issuing CA: good, revoked, unknown."""
    responder = OcspResponder(
        issuer=ocsp_pki.issuing.certificate,
        issuer_key=ocsp_pki.issuing.key,
        revoked=[ocsp_pki.revoked.certificate.serial_number],
        known=[ocsp_pki.good.certificate.serial_number, ocsp_pki.revoked.certificate.serial_number],
        port=ocsp_pki.port,
        clock=ocsp_clock,
    )
    with responder:
        yield responder
