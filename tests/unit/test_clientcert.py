"""Reading the forwarded certificate: four encodings, and every way to mangle them."""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given, settings
from hypothesis import strategies as st

from certsas.clientcert import (
    MAX_HEADER_BYTES,
    decode_certificate_header,
    read_forwarded_certificate,
)
from certsas.errors import ClientCertificateMalformed, ClientCertificateMissing, Refusal
from tests.support.pki import Pki


def encodings(der: bytes) -> dict[str, str]:
    b64 = base64.b64encode(der).decode()
    pem = x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode()
    return {
        "base64 DER": b64,
        "PEM": pem,
        "PEM, newlines folded to spaces": pem.replace("\n", " "),
        "URL-encoded PEM": quote(pem, safe=""),
        "URL-encoded PEM, nginx style": quote(pem, safe="/+="),
        "RFC 9440": f":{b64}:",
    }


FORMS = ("base64 DER", "PEM", "PEM, newlines folded to spaces", "URL-encoded PEM",
         "URL-encoded PEM, nginx style", "RFC 9440")


@pytest.mark.parametrize("form", FORMS)
def test_every_encoding_yields_the_exact_der(pki: Pki, form: str) -> None:
    value = encodings(pki.client.der)[form]
    assert decode_certificate_header(value) == pki.client.der
    presented = read_forwarded_certificate({"X-ARR-ClientCert": value}, "X-ARR-ClientCert")
    assert presented.der == pki.client.der
    assert len(presented.thumbprint) == 64 and presented.thumbprint.isupper()


def test_missing_and_empty_are_missing(pki: Pki) -> None:
    for headers in ({}, {"X-ARR-ClientCert": ""}, {"X-ARR-ClientCert": " \t"},
                    {"X-Other": base64.b64encode(pki.client.der).decode()}):
        with pytest.raises(ClientCertificateMissing):
            read_forwarded_certificate(headers, "X-ARR-ClientCert")


def mangled(pki: Pki) -> dict[str, str]:
    forms = encodings(pki.client.der)
    b64, pem = forms["base64 DER"], forms["PEM"]
    flipped = bytearray(pki.client.der)
    flipped[10] ^= 0x01
    key_pem = pki.client.key_pem.decode()
    return {
        "truncated base64": b64[: len(b64) // 2],
        "truncated DER": base64.b64encode(pki.client.der[:-5]).decode(),
        "bit-flipped DER header": base64.b64encode(bytes(flipped)).decode(),
        "doubled DER": base64.b64encode(pki.client.der * 2).decode(),
        "doubled base64": b64 + b64,
        "two PEM certificates": pem + pem,
        "PEM and a key": pem + key_pem,
        "a private key": key_pem,
        "truncated PEM": pem[: len(pem) // 2],
        "PEM without END": pem.replace("-----END CERTIFICATE-----", ""),
        "PEM with trailing text": pem + "trailing",
        "URL-encoded doubled": quote(pem + pem, safe=""),
        "URL-encoded garbage": "%41%42%43",
        "RFC 9440 truncated": f":{b64[:100]}:",
        "RFC 9440 empty": "::",
        "oversized": "A" * (MAX_HEADER_BYTES + 4),
        "not base64": "!!!!",
        "bad padding": b64 + "=",
        "unicode": "é" * 100,
        "a CSR-like PEM label": pem.replace("CERTIFICATE", "CERTIFICATE REQUEST"),
        # A proxy that appends instead of replacing joins two header values with a comma.
        "two headers joined": b64 + ", " + b64,
        "two PEM headers joined": pem + ", " + pem,
    }


MANGLED = (
    "truncated base64", "truncated DER", "bit-flipped DER header", "doubled DER", "doubled base64",
    "two PEM certificates", "PEM and a key", "a private key", "truncated PEM", "PEM without END",
    "PEM with trailing text", "URL-encoded doubled", "URL-encoded garbage", "RFC 9440 truncated",
    "RFC 9440 empty", "oversized", "not base64", "bad padding", "unicode", "a CSR-like PEM label",
    "two headers joined", "two PEM headers joined",
)


def test_every_mangled_case_is_defined(pki: Pki) -> None:
    assert set(mangled(pki)) == set(MANGLED)


@pytest.mark.parametrize("case", MANGLED)
def test_mangled_headers_are_malformed(pki: Pki, case: str) -> None:
    with pytest.raises(ClientCertificateMalformed):
        read_forwarded_certificate({"X-ARR-ClientCert": mangled(pki)[case]}, "X-ARR-ClientCert")


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.text(max_size=600) | st.binary(max_size=600).map(lambda b: base64.b64encode(b).decode()))
def test_any_header_value_gives_a_refusal_or_a_certificate(value: str) -> None:
    try:
        read_forwarded_certificate({"X-ARR-ClientCert": value}, "X-ARR-ClientCert")
    except Refusal as refusal:
        assert refusal.code in {"client_certificate_missing", "client_certificate_malformed"}


# A fixed certificate (public part only), so a failing example reproduces byte for byte.
FUZZ_DER = (Path(__file__).parent.parent / "data" / "fuzz-client.der").read_bytes()


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.data())
def test_any_mutation_of_a_real_header_is_handled(data: st.DataObject) -> None:
    value = data.draw(st.sampled_from(list(encodings(FUZZ_DER).values())))
    position = data.draw(st.integers(0, len(value) - 1))
    replacement = data.draw(st.text(max_size=4))
    mutated = value[:position] + replacement + value[position + 1:]
    try:
        presented = read_forwarded_certificate({"X-ARR-ClientCert": mutated}, "X-ARR-ClientCert")
    except Refusal as refusal:
        assert refusal.status in {400, 401}
    else:
        # Some mutations still parse (whitespace in PEM, a flipped signature bit: the
        # chain check refuses those); what parsed must be what the thumbprint names.
        assert presented.thumbprint == hashlib.sha256(presented.der).hexdigest().upper()


def test_huge_values_are_refused_quickly() -> None:
    for value in ("A" * 10_000_000, "-----BEGIN CERTIFICATE-----" * 100_000, "%" * 1_000_000):
        start = time.perf_counter()
        with pytest.raises(ClientCertificateMalformed):
            decode_certificate_header(value)
        assert time.perf_counter() - start < 1.0


def test_certificate_with_thousands_of_extensions_is_refused_by_size(pki: Pki) -> None:
    extensions = [x509.UnrecognizedExtension(x509.ObjectIdentifier(f"1.3.6.1.4.1.99999.{i}"),
                                             b"\x05\x00") for i in range(3000)]
    fat = pki.issuing.issue("fat", extra_extensions=extensions)
    value = base64.b64encode(fat.der).decode()
    assert len(value) > MAX_HEADER_BYTES
    with pytest.raises(ClientCertificateMalformed):
        read_forwarded_certificate({"X-ARR-ClientCert": value}, "X-ARR-ClientCert")
