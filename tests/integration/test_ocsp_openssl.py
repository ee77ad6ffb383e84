"""OcspChecker against an independent responder: ``openssl ocsp``.

``openssl ocsp -port`` listens on every address, so it runs inside a private
network namespace (``unshare -n`` as root, ``unshare -rn`` otherwise) together with
the client, in ``tests/ocsp_openssl_probe.py``. Where no namespace can be made the
probe puts openssl's file mode (``-reqin``/``-respout``) behind a loopback HTTP shim
instead; that path is also tested on its own so it cannot rot.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from certsas.devtools.pki import OCSP_SIGNING, CertificateAuthority, Issued
from tests.support.azurite import free_port
from tests.support.pki import Pki

ROOT = Path(__file__).resolve().parent.parent.parent
PROBE = ROOT / "tests" / "support" / "ocsp_openssl_probe.py"


@functools.cache
def namespace_prefix() -> tuple[str, ...] | None:
    """The command that gives the probe a private network namespace, or None if none works."""
    candidates = [("unshare", "-n"), ("unshare", "-rn")] if os.geteuid() == 0 else [
        ("unshare", "-rn")]
    for prefix in candidates:
        try:
            done = subprocess.run([*prefix, "ip", "link", "set", "lo", "up"],
                                  capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return prefix
    return None


def index_line(certificate: x509.Certificate, revoked_at: datetime | None = None) -> str:
    """One line of openssl's CA database (index.txt): status, expiry, revocation, serial, DN."""
    expiry = certificate.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
    serial = format(certificate.serial_number, "X")
    serial = serial if len(serial) % 2 == 0 else "0" + serial  # openssl looks up whole bytes
    subject = "".join(f"/{attribute.rfc4514_attribute_name}={attribute.value!s}"
                      for attribute in certificate.subject)
    if revoked_at is None:
        return f"V\t{expiry}\t\t{serial}\tunknown\t{subject}\n"
    return f"R\t{expiry}\t{revoked_at:%y%m%d%H%M%SZ},keyCompromise\t{serial}\tunknown\t{subject}\n"


@dataclass(frozen=True)
class OpensslSetup:
    workdir: Path
    port: int

    def run(self, how: str, *, signer: str = "delegated", badsig: bool = False,
            ) -> dict[str, dict[str, str]]:
        """The probe's outcomes, name -> {"outcome", "detail"}."""
        name = f"{how}-{signer}-{'badsig' if badsig else 'ok'}.json"
        config = {
            "port": self.port, "ca": "ca.pem", "index": "index.txt", "badsig": badsig,
            "signer": "ca.pem" if signer == "ca" else "signer.pem",
            "signer_key": "ca.key" if signer == "ca" else "signer.key",
            "certs": {"good": "good.pem", "revoked": "revoked.pem", "unknown": "unknown.pem"},
        }
        (self.workdir / name).write_text(json.dumps(config))
        command = [sys.executable, str(PROBE), how, str(self.workdir / name)]
        if how == "netns":
            prefix = namespace_prefix()
            assert prefix is not None
            command = [*prefix, *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        result: dict[str, dict[str, str]] = json.loads(done.stdout.strip().splitlines()[-1])
        return result


@pytest.fixture(scope="module")
def openssl_setup(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> OpensslSetup:
    workdir = tmp_path_factory.mktemp("openssl-ocsp")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    issuing: CertificateAuthority = pki.issuing
    issued: dict[str, Issued] = {
        "good": issuing.issue("openssl-good", ocsp_url=url),
        "revoked": issuing.issue("openssl-revoked", ocsp_url=url),
        "unknown": issuing.issue("openssl-unknown", ocsp_url=url),
        "signer": issuing.issue("openssl ocsp signer", eku=(OCSP_SIGNING,), ocsp_no_check=True),
    }
    for name, item in issued.items():
        (workdir / f"{name}.pem").write_bytes(item.pem)
    (workdir / "signer.key").write_bytes(issued["signer"].key_pem)
    (workdir / "ca.pem").write_bytes(issuing.issued.pem)
    (workdir / "ca.key").write_bytes(issuing.issued.key_pem)
    revoked_at = issued["revoked"].certificate.not_valid_before_utc + timedelta(minutes=1)
    (workdir / "index.txt").write_text(
        index_line(issued["good"].certificate)
        + index_line(issued["revoked"].certificate, revoked_at)
        + index_line(issued["signer"].certificate)
    )
    return OpensslSetup(workdir, port)


def transport() -> str:
    """netns where a namespace can be made; the shim otherwise (never a skip)."""
    return "netns" if namespace_prefix() is not None else "shim"


EXPECTED = {"good": "ocsp:good", "revoked": "certificate_revoked",
            "unknown": "revocation_status_unknown"}


@pytest.mark.parametrize("signer", ["delegated", "ca"])
def test_openssl_good_revoked_unknown(openssl_setup: OpensslSetup, signer: str) -> None:
    outcomes = openssl_setup.run(transport(), signer=signer)
    assert {name: result["outcome"] for name, result in outcomes.items()} == EXPECTED
    assert "revoked at" in outcomes["revoked"]["detail"]
    assert "keyCompromise" in outcomes["revoked"]["detail"]


@pytest.mark.parametrize("signer", ["delegated", "ca"])
def test_openssl_badsig_is_unavailable(openssl_setup: OpensslSetup, signer: str) -> None:
    outcomes = openssl_setup.run(transport(), signer=signer, badsig=True)
    for result in outcomes.values():
        assert result["outcome"] == "revocation_unavailable"
        assert "signature does not verify" in result["detail"]


def test_shim_fallback_works(openssl_setup: OpensslSetup) -> None:
    """The path taken on machines without namespaces, exercised everywhere."""
    outcomes = openssl_setup.run("shim")
    assert {name: result["outcome"] for name, result in outcomes.items()} == EXPECTED
    bad = openssl_setup.run("shim", badsig=True)
    assert {result["outcome"] for result in bad.values()} == {"revocation_unavailable"}


def test_a_namespace_is_available_here() -> None:
    """Not a requirement of the suite (the shim covers it), but say which path ran."""
    print(f"openssl ocsp transport: {transport()} ({namespace_prefix()})")
