"""Seeded inputs for the whole-broker fuzz: certificate mutants, header and body mutants.

Plain ``random.Random(seed)``, so a failure names its seed and index and reproduces
byte for byte. Half of the certificate mutants are re-signed by the CA, so they get past
the signature check to the code behind it (the rest stop at the chain, or before).
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from certsas.devtools.pki import CLIENT_AUTH, CertificateAuthority, Issued, name
from certsas.successor import proof_message
from certsas.thumbprints import sha256_thumbprint
from tests.support.certforge import sign_tbs, split_certificate
from tests.support.ocsp_faults import sign_sha256


def _client_certificate(ca: CertificateAuthority, key: ec.EllipticCurvePrivateKey, serial: int,
                        start: datetime, end: datetime) -> x509.Certificate:
    return (
        x509.CertificateBuilder().subject_name(name("fuzz-client"))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key()).serial_number(serial)
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                       False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("fuzz.example")]), False)
        .sign(ca.key, hashes.SHA256(), ecdsa_deterministic=True)
    )


def fixed_successor(ca: CertificateAuthority) -> Issued:
    """The fuzz client's successor (SPEC §4a): the same subject, its own derived key, later end."""
    key = ec.derive_private_key(0x5_0CCE55, ec.SECP256R1())
    return Issued(_client_certificate(ca, key, 3, datetime(2026, 1, 1, tzinfo=UTC),
                                      datetime(2037, 1, 1, tzinfo=UTC)), key)


def fixed_pki() -> tuple[CertificateAuthority, Issued]:
    """A CA and a client certificate that are the same bytes on every run (derived keys,
    fixed serials and dates, RFC 6979 signatures), so a seed names the same mutants."""
    ca_key = ec.derive_private_key(0xCE7_5A5_CA, ec.SECP256R1())
    client_key = ec.derive_private_key(0xC1_1E47, ec.SECP256R1())
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2036, 1, 1, tzinfo=UTC)
    ca_name = name("certsas fuzz CA")
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(1)
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256(), ecdsa_deterministic=True)
    )
    authority = CertificateAuthority(Issued(ca, ca_key))
    return authority, Issued(_client_certificate(authority, client_key, 2, start, end), client_key)


@dataclass(frozen=True)
class Mutant:
    der: bytes
    resigned: bool


def mutate(data: bytes, rng: random.Random) -> bytes:
    """1 to 3 byte mutations: replace, insert or delete a byte, or flip a bit."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        position = rng.randrange(len(out))
        kind = rng.randrange(4)
        if kind == 0:
            out[position] = rng.randrange(256)
        elif kind == 1:
            out.insert(position, rng.randrange(256))
        elif kind == 2 and len(out) > 1:
            del out[position]
        else:
            out[position] ^= 1 << rng.randrange(8)
    return bytes(out)


def certificate_mutants(der: bytes, ca: CertificateAuthority, count: int,
                        seed: int) -> Iterator[Mutant]:
    """``count`` mutants of ``der``: even ones mutate the TBS and are re-signed by ``ca``."""
    rng = random.Random(seed)
    tbs, algorithm = split_certificate(der)
    for index in range(count):
        if index % 2 == 0:
            yield Mutant(sign_tbs(mutate(tbs, rng), algorithm, ca.key), resigned=True)
        else:
            yield Mutant(mutate(der, rng), resigned=False)


def pem_text(der: bytes) -> str:
    b64 = base64.b64encode(der).decode()
    lines = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n"


def header_forms(der: bytes) -> dict[str, str]:
    """``der`` in each accepted header form (whether or not it parses as a certificate)."""
    b64 = base64.b64encode(der).decode()
    pem = pem_text(der)
    return {
        "base64 DER": b64,
        "PEM": pem,
        "URL-encoded PEM": quote(pem, safe=""),
        "RFC 9440": f":{b64.rstrip('=')}:",
        "XFCC": f'Hash=00;Cert="{quote(pem, safe="")}";Subject="CN=x, O=y"',
    }


# What a hostile or broken proxy might put where one character was.
_HEADER_NOISE = [*':;,="%\\-\n\t \x00\x7f', "%2", "%zz", "é", "\ud800", "-----BEGIN ",
                 "-----END CERTIFICATE-----", "Cert=", ","]


def header_mutants(der: bytes, count: int, seed: int) -> Iterator[str]:
    """Each accepted form of ``der`` with 1 to 3 spots replaced, cut or doubled."""
    rng = random.Random(seed)
    forms = list(header_forms(der).values())
    for _ in range(count):
        value = rng.choice(forms)
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(value) or 1)
            kind = rng.randrange(3)
            if kind == 0:
                value = value[:position] + rng.choice(_HEADER_NOISE) + value[position + 1:]
            elif kind == 1:
                value = value[:position]
            else:
                value = value + "," + value[position:]
        yield value


_FIELDS = ["container", "blob", "permissions", "ttl_minutes", "x", "", "\ud800"]
_VALUES: list[object] = [
    None, True, False, 0, -1, 1, 15, 60, 61, 10**30, 1.5, float("nan"), "", "reports",
    "other", "r", "rl", "racwdl", "w", "lr", "z", "a/\ud800", "a/../b", "/a", "a\\b", "a\x00",
    "x" * 1025, "ok/blob.txt", "é/ü", [], {}, ["r"], {"a": 1},
]


def _noise(rng: random.Random, most: int) -> bytes:
    return bytes(rng.randrange(256) for _ in range(rng.randrange(most)))


def _object_of(rng: random.Random, fields: list[str], values: list[object], most: int) -> bytes:
    """A JSON object of up to ``most`` fields drawn from ``fields``, each a value drawn."""
    document = {rng.choice(fields): rng.choice(values) for _ in range(rng.randint(0, most))}
    return json.dumps(document).encode("utf-8", "surrogatepass")


def body_mutants(count: int, seed: int) -> Iterator[bytes]:
    """JSON objects of known and unknown fields and odd values, and bytes that are not JSON."""
    rng = random.Random(seed)
    for _ in range(count):
        kind = rng.randrange(4)
        if kind == 0:
            yield _noise(rng, 40)
        elif kind == 1:
            yield _object_of(rng, _FIELDS, _VALUES, 4)
        elif kind == 2:
            depth = rng.randint(1, 3000)
            yield b"[" * depth + b"]" * depth
        else:
            text = json.dumps({rng.choice(_FIELDS[:4]): rng.choice(_VALUES)})
            position = rng.randrange(len(text))
            yield (text[:position] + rng.choice('{}[]",:\\') + text[position + 1:]).encode(
                "utf-8", "surrogatepass")


def parses(der: bytes) -> x509.Certificate | None:
    """The certificate, if ``der`` is one ``cryptography`` will build a registration from."""
    try:
        certificate = x509.load_der_x509_certificate(der)
        certificate.public_bytes(Encoding.PEM)
        return certificate
    except Exception:  # a fuzz helper: anything unreadable is simply "no"
        return None


def rotate_body(current_der: bytes, successor_der: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """A ``/api/rotate`` body for ``successor_der`` (parsed or not), proved by ``key`` over
    the thumbprints of the bytes as they are, so a mutant that still parses and chains
    reaches the checks behind the proof."""
    message = proof_message(sha256_thumbprint(current_der), sha256_thumbprint(successor_der))
    return json.dumps({"certificate": pem_text(successor_der),
                       "signature": base64.b64encode(sign_sha256(key, message)).decode()}).encode()


def rotate_body_mutants(current_der: bytes, successor: Issued, count: int,
                        seed: int) -> Iterator[bytes]:
    """Rotation bodies: bytes, objects of known and unknown fields and odd values, the valid
    body with a character replaced, its PEM cut or spliced, deep nesting."""
    rng = random.Random(seed)
    assert isinstance(successor.key, ec.EllipticCurvePrivateKey)
    valid = rotate_body(current_der, successor.der, successor.key).decode()
    document = json.loads(valid)
    fields = ["certificate", "signature", "x", "", "\ud800"]
    values: list[object] = [document["certificate"], document["signature"], None, True, 0, 1.5,
                            "", "AAAA", "====", "not base64!", "é", "\ud800", [], {}, ["x"],
                            "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----",
                            document["certificate"] * 2, "A" * 40_000]
    for _ in range(count):
        kind = rng.randrange(5)
        if kind == 0:
            yield _noise(rng, 60)
        elif kind == 1:
            yield _object_of(rng, fields, values, 3)
        elif kind == 2:
            position = rng.randrange(len(valid))
            yield (valid[:position] + rng.choice('{}[]",:\\=A-\n') + valid[position + 1:]).encode()
        elif kind == 3:
            pem = document["certificate"]
            position = rng.randrange(len(pem))
            cut = pem[:position] + rng.choice(["", "A", "=", "\n", "-", pem[position:]]) \
                + pem[position + 1:]
            yield json.dumps({"certificate": cut, "signature": document["signature"]}).encode()
        else:
            depth = rng.randint(1, 3000)
            yield b"{\"certificate\": " + b"[" * depth + b"]" * depth + b"}"
