"""Shared fixtures: a test PKI, a real Azurite, clean environment variables."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from certsas.clientcert import PresentedCertificate
from certsas.config import AZURITE_ACCOUNT, AZURITE_KEY
from certsas.devpki import OCSP_SIGNING, CertificateAuthority, Issued
from certsas.ocsp_responder import OcspResponder
from certsas.verification import VerifiedCertificate

if TYPE_CHECKING:
    from tests.devtools import DevFiles, Served

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = (
    "TRUSTED_CA_CERTS", "STORAGE_CONNECTION_STRING", "STORAGE_ACCOUNT_NAME", "CERT_TABLE_NAME",
    "AUDIT_TABLE_NAME", "CLIENT_CERT_HEADER", "OCSP_MODE", "OCSP_RESPONDER_URL",
    "OCSP_TIMEOUT_SECONDS", "OCSP_CACHE_MAX_SECONDS", "SAS_DEFAULT_TTL_MINUTES",
    "SAS_MAX_TTL_MINUTES", "REGISTRY_CACHE_SECONDS", "STORAGE_TIMEOUT_SECONDS", "AZURE_CLIENT_ID",
)


@pytest.fixture(autouse=True)
def _clean_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a setting another test (or the developer's shell) left behind."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)


# --- PKI ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A root, an issuing CA under it, a client, and a stranger CA nobody trusts."""

    root: CertificateAuthority
    issuing: CertificateAuthority
    client: Issued
    stranger: CertificateAuthority

    @property
    def trust_bundle(self) -> str:
        return (self.issuing.issued.pem + self.root.issued.pem).decode("ascii")


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


# --- Azurite -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def azurite_binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if found is None:
        pytest.fail("Azurite is not installed: run `make test` (it runs `npm ci`)")
    return found


@dataclass
class Azurite:
    """A real Azurite (blob + table) on loopback; ``stop()``/``start()`` for fault tests."""

    blob_port: int
    table_port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.blob_port}/{AZURITE_ACCOUNT}"

    @property
    def table_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.table_port}/{AZURITE_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};BlobEndpoint={self.blob_endpoint};"
            f"TableEndpoint={self.table_endpoint};"
        )

    def start(self) -> None:
        log = open(self.workdir / "azurite.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [
                azurite_binary(), "--silent", "--inMemoryPersistence", "--disableTelemetry",
                "--skipApiVersionCheck", "--loose",
                "--blobHost", "127.0.0.1", "--blobPort", str(self.blob_port),
                "--tableHost", "127.0.0.1", "--tablePort", str(self.table_port),
                "--queueHost", "127.0.0.1", "--queuePort", str(free_port()),
            ],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.workdir,
        )
        wait_for_port(self.blob_port)
        wait_for_port(self.table_port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


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


# --- developer tools: a written dev PKI, the app served on real sockets ---------------


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> DevFiles:
    """What ``certsas dev-pki`` writes, in a folder (OCSP URL points nowhere)."""
    from tests.devtools import write_dev_pki  # imported here: devtools imports this module

    return write_dev_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, azurite: Azurite, files: DevFiles,
           fresh_tables: tuple[str, str]) -> Iterator[Served]:
    """The app behind ``DevServer``: plain HTTP and the TLS front end, on free ports."""
    from tests.devtools import served_app

    with served_app(monkeypatch, azurite, files, fresh_tables) as served:
        yield served


# --- OCSP responder ------------------------------------------------------------------


class ManualClock:
    """A clock that stands still until the test moves it (``advance``)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass(frozen=True)
class OcspPki:
    """The test PKI's issuing CA with OCSP: clients whose AIA names ``url``, and signers."""

    root: CertificateAuthority
    issuing: CertificateAuthority
    stranger: CertificateAuthority
    port: int
    good: Issued  # known to the responder, not revoked
    revoked: Issued
    unknown: Issued  # not known to the responder
    no_aia: Issued  # names no OCSP responder
    signer: Issued  # delegated responder: issued by the issuing CA, id-kp-OCSPSigning

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def verified(self, issued: Issued) -> VerifiedCertificate:
        """What the chain validator would hand the revocation check."""
        return VerifiedCertificate(
            PresentedCertificate.from_der(issued.der),
            (issued.certificate, self.issuing.certificate, self.root.certificate),
        )


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
