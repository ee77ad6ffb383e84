"""certsas.client.identity: the certificate and key files people have, or the line that converts them."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    pkcs7,
    pkcs12,
)

from certsas.client import IdentityError, load_identity
from certsas.devtools.pki import Issued, new_key
from tests.support.pki import Pki


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def thumbprint(issued: Issued) -> str:
    return issued.certificate.fingerprint(hashes.SHA256()).hex().upper()


def test_pem_certificate_and_key(pki: Pki, tmp_path: Path) -> None:
    cert = write(tmp_path / "c.pem", pki.client.pem + pki.issuing.certificate.public_bytes(
        Encoding.PEM))
    key = write(tmp_path / "c.key", pki.client.key_pem)
    identity = load_identity(cert, key)
    assert identity.thumbprint == thumbprint(pki.client)
    assert identity.chain == (pki.issuing.certificate,)
    assert "key=" not in repr(identity)


def test_der_certificate_and_der_key(pki: Pki, tmp_path: Path) -> None:
    cert = write(tmp_path / "c.cer", pki.client.der)
    key = write(tmp_path / "c.der", pki.client.key.private_bytes(
        Encoding.DER, PrivateFormat.PKCS8, NoEncryption()))
    assert load_identity(cert, key).thumbprint == thumbprint(pki.client)


def test_pem_holding_the_key_needs_no_key_file(pki: Pki, tmp_path: Path) -> None:
    both = write(tmp_path / "both.pem", pki.client.key_pem + pki.client.pem)
    assert load_identity(both).thumbprint == thumbprint(pki.client)
    only = write(tmp_path / "only.pem", pki.client.pem)
    with pytest.raises(IdentityError, match=r"only.pem holds no private key: give the key file"):
        load_identity(only)


def test_encrypted_key_asks_for_its_password_once(pki: Pki, tmp_path: Path) -> None:
    cert = write(tmp_path / "c.pem", pki.client.pem)
    key = write(tmp_path / "c.key", pki.client.key.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"s3cret")))
    with pytest.raises(IdentityError) as missing:
        load_identity(cert, key)
    assert str(missing.value) == f"{key} is encrypted: give its password"
    asked: list[str] = []

    def ask(name: str) -> str:
        asked.append(name)
        return "s3cret"

    identity = load_identity(cert, key, ask)
    assert identity.thumbprint == thumbprint(pki.client) and asked == [key]
    with pytest.raises(IdentityError) as wrong:
        load_identity(cert, key, "nope")
    assert str(wrong.value) == f"cannot decrypt {key}: wrong password?"
    assert "nope" not in str(wrong.value) and "s3cret" not in str(wrong.value)


def test_legacy_encrypted_rsa_pem_key(tmp_path: Path, pki: Pki) -> None:
    rsa_client = pki.issuing.issue("rsa-client", key=new_key("rsa"))
    cert = write(tmp_path / "c.pem", rsa_client.pem)
    key = write(tmp_path / "c.key", rsa_client.key.private_bytes(
        Encoding.PEM, PrivateFormat.TraditionalOpenSSL, BestAvailableEncryption(b"pw")))
    assert b"Proc-Type: 4,ENCRYPTED" in Path(key).read_bytes()
    assert load_identity(cert, key, b"pw").thumbprint == thumbprint(rsa_client)


@pytest.mark.parametrize("password", [None, b"pfx-password"])
def test_pkcs12_with_its_chain(pki: Pki, tmp_path: Path, password: bytes | None) -> None:
    encryption = BestAvailableEncryption(password) if password else NoEncryption()
    pfx = write(tmp_path / "c.pfx", pkcs12.serialize_key_and_certificates(
        b"client", pki.client.key, pki.client.certificate, [pki.issuing.certificate], encryption))
    identity = load_identity(pfx, password=password.decode() if password else None)
    assert identity.thumbprint == thumbprint(pki.client)
    assert identity.chain == (pki.issuing.certificate,)


def test_pkcs12_wrong_password_says_how_to_convert(pki: Pki, tmp_path: Path) -> None:
    pfx = write(tmp_path / "c.pfx", pkcs12.serialize_key_and_certificates(
        b"client", pki.client.key, pki.client.certificate, None, BestAvailableEncryption(b"x")))
    with pytest.raises(IdentityError) as missing:
        load_identity(pfx)
    assert str(missing.value) == f"{pfx} is encrypted: give its password"
    with pytest.raises(IdentityError) as wrong:
        load_identity(pfx, password="y")
    assert str(wrong.value).startswith(f"cannot open {pfx}: wrong password, or a PKCS#12 ")
    assert f"`openssl pkcs12 -in {pfx} -nodes -out client.pem` (add -legacy" in str(wrong.value)


def test_other_files_are_one_line_with_the_conversion(pki: Pki, tmp_path: Path) -> None:
    p7b = write(tmp_path / "c.p7b", pkcs7.serialize_certificates([pki.client.certificate],
                                                                  Encoding.PEM))
    key = write(tmp_path / "c.key", pki.client.key_pem)
    cases = {
        p7b: f"{p7b} is a PKCS#7 bundle; convert it with `openssl pkcs7 -print_certs -in {p7b} "
             f"-out client.pem`",
        write(tmp_path / "junk", b"\x01\x02junk"): f"{tmp_path / 'junk'} is not a certificate "
                                                   f"(PEM, DER or PKCS#12)",
        key: f"{key} is not a PEM certificate",
        str(tmp_path / "none.pem"): f"cannot read certificate {tmp_path / 'none.pem'}: No such "
                                    f"file or directory",
    }
    for cert, message in cases.items():
        with pytest.raises(IdentityError) as failed:
            load_identity(cert, key)
        assert str(failed.value) == message


def test_a_key_that_is_not_the_certificates(pki: Pki, tmp_path: Path) -> None:
    cert = write(tmp_path / "c.pem", pki.client.pem)
    other = write(tmp_path / "o.key", pki.issuing.issue("other").key_pem)
    with pytest.raises(IdentityError) as failed:
        load_identity(cert, other)
    assert str(failed.value) == f"{other} is not the key of {cert}"
    with pytest.raises(IdentityError) as failed:
        load_identity(cert, cert)
    assert str(failed.value) == f"{cert} is not a PEM private key"


def test_pkcs12_of_an_older_windows_export(pki: Pki, tmp_path: Path) -> None:
    """3DES and SHA-1 MAC, what Windows exported before TripleDES-SHA1 stopped being the default."""
    legacy = (PrivateFormat.PKCS12.encryption_builder()
              .kdf_rounds(2048).key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
              .hmac_hash(hashes.SHA1()).build(b"old"))  # noqa: S303 - the old format on purpose
    pfx = write(tmp_path / "old.pfx", pkcs12.serialize_key_and_certificates(
        b"client", pki.client.key, pki.client.certificate, None, legacy))
    assert load_identity(pfx, password="old").thumbprint == thumbprint(pki.client)
