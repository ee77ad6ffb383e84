"""Reading the certificate file ``certsas register`` is given: PEM or DER, or one clear line."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from certsas.cli.certfile import read_certificate
from certsas.cli.errors import CliError
from certsas.devtools.pki import CertificateAuthority
from tests.support import certforge
from tests.support.pki import Pki


def written(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_pem_and_der_give_the_same_certificate(pki: Pki, tmp_path: Path) -> None:
    pem = written(tmp_path, "client.pem", pki.client.pem)
    der = written(tmp_path, "client.cer", pki.client.der)
    assert read_certificate(pem).der == read_certificate(der).der == pki.client.der


def test_two_certificates_a_key_and_noise_are_one_line_each(pki: Pki, tmp_path: Path) -> None:
    key = pki.client.key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
    cases = {
        written(tmp_path, "two.pem", pki.client.pem * 2): "holds 2 certificates; register one at "
                                                          "a time",
        written(tmp_path, "client.key", key): "holds no PEM certificate (a key or a request?)",
        written(tmp_path, "noise.bin", b"\x01\x02hello"):
            "is neither a PEM nor a DER certificate (from a .pfx or .p12: openssl pkcs12 -in FILE",
        written(tmp_path, "cut.der", pki.client.der[:-10]): "is neither a PEM nor a DER",
    }
    for path, message in cases.items():
        with pytest.raises(CliError) as caught:
            read_certificate(path)
        assert str(caught.value).startswith(f"{path} {message}")
    with pytest.raises(CliError, match=r"cannot read .*none\.pem: No such file"):
        read_certificate(tmp_path / "none.pem")


@pytest.mark.parametrize(("forge", "field"), [
    (certforge.invalid_utf8_subject, "its subject"),
    (certforge.invalid_version, "its version"),
    (lambda ca: certforge.serial(ca, 0), "its serial number (not positive)"),
    (certforge.nine_byte_ip_san, "an extension"),
    (certforge.duplicate_extension, "an extension"),
])
def test_fields_that_do_not_parse_are_named_and_force_cannot_help(
        pki: Pki, tmp_path: Path, forge: Callable[[CertificateAuthority], bytes],
        field: str) -> None:
    der = forge(pki.issuing)
    pem = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der) + \
        b"-----END CERTIFICATE-----\n"
    for path in (written(tmp_path, "odd.der", der), written(tmp_path, "odd.pem", pem)):
        with pytest.raises(CliError) as caught:
            read_certificate(path)
        message = str(caught.value)
        assert message == (f"{path}: {field} does not parse; the app refuses it as "
                           "client_certificate_malformed, so it cannot be registered, even "
                           "with --force")
