"""Reading the forwarded certificate: four encodings, and every way to mangle them."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
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
from certsas.devtools.pki import CertificateAuthority
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


# --- RFC 9440 without padding, Envoy's XFCC (SPEC §2) -------------------------------


def test_rfc9440_without_padding_is_accepted(pki: Pki) -> None:
    b64 = base64.b64encode(pki.client.der).decode()
    for der in (pki.client.der, pki.client.der + b"\x00", pki.client.der + b"\x00\x00"):
        # Whatever the remainder, the unpadded form decodes; only the real DER parses.
        unpadded = base64.b64encode(der).decode().rstrip("=")
        assert decode_certificate_header(f":{unpadded}:") == der
    assert decode_certificate_header(f":{b64}:") == pki.client.der
    # Padding is optional, not free: too much, misplaced, or an impossible length is refused.
    for bad in (f":{b64}====:", ":AB=C:", ":A:", ":AAAAA:"):
        with pytest.raises(ClientCertificateMalformed):
            decode_certificate_header(bad)


def xfcc(pki: Pki, *, upper_hex: bool = True, extra: str = "") -> str:
    pem = pki.client.pem.decode()
    cert = quote(pem, safe="")
    if not upper_hex:
        cert = re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), cert)
    digest = hashlib.sha256(pki.client.der).hexdigest()
    return (f'Hash={digest};Cert="{cert}";Subject="CN=a, O=b;c=d";'
            f'URI=spiffe://cluster.local/ns/x/sa/y{extra}')


def test_xfcc_element_yields_its_cert(pki: Pki) -> None:
    for value in (xfcc(pki), xfcc(pki, upper_hex=False),
                  # Unquoted Cert, keys in another case, spaces around separators.
                  f"hash=ab ; cert={quote(pki.client.pem.decode(), safe='')} ; By=spiffe://x",
                  # Container Apps: Hash, Cert and Chain.
                  xfcc(pki, extra=f';Chain="{quote(pki.issuing.issued.pem.decode(), safe="")}"')):
        presented = read_forwarded_certificate({"X-Forwarded-Client-Cert": value},
                                               "X-Forwarded-Client-Cert")
        assert presented.der == pki.client.der


def test_xfcc_several_elements_are_malformed_and_no_cert_is_missing(pki: Pki) -> None:
    one = xfcc(pki)
    for several in (f"{one},{one}", f"By=spiffe://a;Hash=00,{one}", f"{one},"):
        with pytest.raises(ClientCertificateMalformed, match="more than one element"):
            decode_certificate_header(several)
    # A comma inside quotes is not an element separator.
    assert decode_certificate_header(one.replace('Subject="CN=a, O=b', 'Subject="CN=a,,O=b')) \
        == pki.client.der
    with pytest.raises(ClientCertificateMissing):
        decode_certificate_header('Hash=ab;Subject="CN=x";URI=spiffe://x')
    for bad in ('Cert=""', 'Cert="abc', f'Cert="{quote("not pem")}"', "Hash=a;Hash=b;Cert=x",
                f'{one};Cert="x"', 'Hash=a;;Cert=x', f'Cert="{quote(pki.client.pem.decode() * 2)}"'):
        with pytest.raises(ClientCertificateMalformed):
            decode_certificate_header(bad)


def test_xfcc_repeats_san_keys_but_never_cert(pki: Pki) -> None:
    # Envoy writes one DNS (or URI) pair per SAN: a certificate with two SANs behind
    # Container Apps arrives like this, and is read.
    two_sans = pki.issuing.issue("two-sans", dns_names=["a.example", "b.example"])
    cert = quote(two_sans.pem.decode(), safe="")
    digest = hashlib.sha256(two_sans.der).hexdigest()
    value = (f'Hash={digest};Cert="{cert}";Subject="CN=two-sans";'
             "DNS=a.example;DNS=b.example;URI=spiffe://x/a;uri=spiffe://x/b")
    presented = read_forwarded_certificate({"X-Forwarded-Client-Cert": value},
                                           "X-Forwarded-Client-Cert")
    assert presented.der == two_sans.der
    # The same certificate twice is still two certificates; so is Cert in another case.
    for twice in (f'{value};Cert="{cert}"', f'{value};cert="{cert}"',
                  f'CERT="{cert}";DNS=a.example;Cert="{quote(pki.client.pem.decode(), safe="")}"'):
        with pytest.raises(ClientCertificateMalformed, match="Cert appears twice"):
            decode_certificate_header(twice)


def test_detection_is_unambiguous(pki: Pki) -> None:
    # Each form decodes as itself; no form's value starts like another's.
    forms = encodings(pki.client.der) | {"XFCC": xfcc(pki)}
    for value in forms.values():
        assert decode_certificate_header(value) == pki.client.der
    # Pure base64 (even "By==", which starts like an XFCC key) is base64 DER: malformed,
    # not an XFCC element without Cert; "Key=value" with more after the "=" is XFCC.
    assert decode_certificate_header("By==") == b"\x07"
    with pytest.raises(ClientCertificateMissing):
        decode_certificate_header("By=spiffe://x")
    # A Cert value holding "-----BEGIN" and "%" is still read as XFCC, not as PEM.
    assert decode_certificate_header(f'Cert="{quote(forms["PEM"], safe="")}";Hash=-----BEGIN') \
        == pki.client.der


# --- time: linear for every form ------------------------------------------------------

LIMIT = MAX_HEADER_BYTES - 64


def adversarial_headers() -> dict[str, str]:
    """Values built to make a careless parser backtrack or rescan, each near 16 KiB."""
    begin = "-----BEGIN CERTIFICATE-----\n"
    return {
        "repeated BEGIN lines": (begin * (LIMIT // len(begin)))[:LIMIT],
        "repeated BEGIN of another label": ("-----BEGIN X-----\n" * LIMIT)[:LIMIT],
        "BEGIN and END of another label": ("-----BEGIN A----------END B-----" * LIMIT)[:LIMIT],
        "URL-encoded repeated BEGIN": quote(begin * (LIMIT // 40), safe="")[:LIMIT],
        "percent signs": "%" * LIMIT,
        "percent escapes": "%41" * (LIMIT // 3),
        "XFCC, spaces then a quote": "Hash=" + " " * (LIMIT - 8) + 'x"',
        "XFCC, unterminated quote": 'Cert="' + "\\a" * (LIMIT // 2 - 4),
        "XFCC, many pairs": ("Hash=a;" * (LIMIT // 7))[:LIMIT] + '"',
        "RFC 9440, bad last char": ":" + "A" * (LIMIT - 3) + "!:",
        "base64, bad last char": "A" * (LIMIT - 1) + "!",
    }


def normal_headers() -> dict[str, str]:
    """The same forms, well made, for a certificate as large as a header allows."""
    filler = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"),
                                        b"\x04" * 9000)
    der = CertificateAuthority.root().issue("big", extra_extensions=[filler]).der
    forms = encodings(der)
    forms["XFCC"] = f'Hash=00;Cert="{quote(forms["PEM"], safe="")}"'
    return forms


def best_time(value: str, runs: int = 7) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        with contextlib.suppress(Refusal):
            decode_certificate_header(value)
        best = min(best, time.perf_counter() - started)
    return best


def test_every_header_form_is_read_in_linear_time() -> None:
    """Adversarial 16 KiB values cost what a normal header of that size costs.

    A ratio, not a time, so a loaded machine does not make it flaky; a quadratic
    reader (the old PEM regex took ~110 ms here) is hundreds of times over the bound.
    """
    normal = normal_headers()
    assert all(len(value) <= MAX_HEADER_BYTES for value in normal.values())
    baseline = max(best_time(value) for value in normal.values())
    ratios = {name: best_time(value) / baseline for name, value in adversarial_headers().items()}
    worst = max(ratios, key=ratios.__getitem__)
    print(f"PEM reader: worst adversarial/normal time ratio {ratios[worst]:.1f} ({worst})")
    assert ratios[worst] < 20, ratios
