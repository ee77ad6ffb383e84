"""Dates and chain validation, and the reuse of a verified chain."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certsas.clientcert import PresentedCertificate
from certsas.devtools.pki import CertificateAuthority
from certsas.errors import CertificateExpired, CertificateNotTrusted, ClientCertificateMalformed
from certsas.verification import ChainValidator, check_dates
from tests.support.certforge import AnyKey, leaf, nine_byte_ip_san
from tests.support.pki import Pki


def presented(der: bytes) -> PresentedCertificate:
    return PresentedCertificate.from_der(der)


def test_chain_runs_leaf_to_anchor(pki: Pki) -> None:
    verified = ChainValidator((pki.issuing.certificate,)).verify(presented(pki.client.der))
    assert verified.chain[0] == pki.client.certificate
    assert verified.issuer == pki.issuing.certificate


def test_only_root_configured_cannot_build_the_chain(pki: Pki) -> None:
    # The front end forwards the leaf alone, so the issuing CA must be configured.
    with pytest.raises(CertificateNotTrusted):
        ChainValidator((pki.root.certificate,)).verify(presented(pki.client.der))


def test_bad_signature_is_not_trusted(pki: Pki) -> None:
    der = bytearray(pki.client.der)
    der[-3] ^= 0xFF  # inside the signature value
    with pytest.raises(CertificateNotTrusted):
        ChainValidator((pki.issuing.certificate,)).verify(presented(bytes(der)))


def test_expired_intermediate_is_not_trusted(pki: Pki) -> None:
    now = datetime.now(UTC)
    old = pki.root.intermediate("old issuing", not_before=now - timedelta(days=30),
                                not_after=now - timedelta(days=1))
    leaf = old.issue("c", not_before=now - timedelta(days=2), not_after=now + timedelta(days=2))
    with pytest.raises(CertificateNotTrusted):
        ChainValidator((old.certificate, pki.root.certificate)).verify(presented(leaf.der))


def test_check_dates_bounds(pki: Pki) -> None:
    cert = pki.client.certificate
    check_dates(cert, cert.not_valid_before_utc)
    check_dates(cert, cert.not_valid_after_utc)
    with pytest.raises(CertificateExpired):
        check_dates(cert, cert.not_valid_before_utc - timedelta(seconds=1))
    with pytest.raises(CertificateExpired):
        check_dates(cert, cert.not_valid_after_utc + timedelta(seconds=1))


def test_verified_chain_is_reused_but_not_past_its_lifetime(pki: Pki) -> None:
    now = [datetime.now(UTC)]
    validator = ChainValidator((pki.issuing.certificate,), clock=lambda: now[0], cache_seconds=60)
    calls = []
    original = validator._verifier

    def counting(at: datetime):  # type: ignore[no-untyped-def]
        calls.append(at)
        return original(at)

    validator._verifier = counting  # type: ignore[method-assign,assignment]
    p = presented(pki.client.der)
    validator.verify(p)
    validator.verify(p)
    assert len(calls) == 1
    now[0] += timedelta(seconds=61)
    validator.verify(p)
    assert len(calls) == 2


def test_cache_never_outlives_the_chain(pki: Pki) -> None:
    now = datetime.now(UTC)
    leaf = pki.issuing.issue("short", not_after=now + timedelta(seconds=30))
    clock = [now]
    validator = ChainValidator((pki.issuing.certificate,), clock=lambda: clock[0],
                               cache_seconds=3600)
    validator.verify(presented(leaf.der))
    clock[0] = now + timedelta(seconds=31)
    with pytest.raises(CertificateNotTrusted):
        validator.verify(presented(leaf.der))


def test_cache_is_bounded(pki: Pki) -> None:
    validator = ChainValidator((pki.issuing.certificate,), cache_size=3)
    for i in range(6):
        validator.verify(presented(pki.issuing.issue(f"c{i}").der))
    assert len(validator._cache) == 3


# --- RFC 5280's SAN rule, keyed on the subject (SPEC §1 certificate_not_trusted) ------

CN = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "c")])
EMPTY = x509.Name([])
DNS = [x509.DNSName("c.example")]


@pytest.mark.parametrize(("subject", "san", "critical", "trusted"), [
    (CN, None, False, True),  # the one relaxation: a named client needs no SAN
    (CN, DNS, False, True),
    (EMPTY, DNS, True, True),
    (CN, DNS, True, False),  # a SAN must not be critical when there is a subject
    (EMPTY, DNS, False, False),  # an empty subject needs a critical SAN
    (EMPTY, None, False, False),  # no name at all
])
def test_san_rule_follows_the_subject(pki: Pki, subject: x509.Name,
                                      san: list[x509.GeneralName] | None, critical: bool,
                                      trusted: bool) -> None:
    der = leaf(pki.issuing, subject, san=san, san_critical=critical)
    validator = ChainValidator((pki.issuing.certificate,))
    if trusted:
        assert validator.verify(presented(der)).certificate.subject == subject
    else:
        with pytest.raises(CertificateNotTrusted, match="SAN"):
            validator.verify(presented(der))


@pytest.mark.parametrize(("key", "trusted"), [
    (lambda: rsa.generate_private_key(65537, 1024), False),  # noqa: S505 - the weak key refused
    (lambda: rsa.generate_private_key(65537, 2048), True),
    (lambda: ec.generate_private_key(ec.SECP192R1()), False),
    (lambda: ec.generate_private_key(ec.SECP256R1()), True),
    (lambda: ec.generate_private_key(ec.SECP384R1()), True),
    (lambda: dsa.generate_private_key(2048), False),
], ids=["rsa1024", "rsa2048", "p192", "p256", "p384", "dsa2048"])
def test_weak_and_dsa_leaf_keys_are_not_trusted(pki: Pki, key: Callable[[], AnyKey],
                                                trusted: bool) -> None:
    der = leaf(pki.issuing, key=key())
    validator = ChainValidator((pki.issuing.certificate,))
    if trusted:
        validator.verify(presented(der))
    else:
        with pytest.raises(CertificateNotTrusted) as caught:
            validator.verify(presented(der))
        assert caught.value.code == "certificate_not_trusted"


def test_a_field_the_verifier_cannot_read_is_not_trusted(pki: Pki) -> None:
    # cryptography's verifier raises ValueError for a 9-byte iPAddress; that was a 500.
    # The header reader already calls it malformed (it reads the extensions at parse);
    # the validator stands on its own for a certificate that reached it another way.
    der = nine_byte_ip_san(pki.issuing)
    with pytest.raises(ClientCertificateMalformed):
        presented(der)
    unread = PresentedCertificate(der, x509.load_der_x509_certificate(der), "T", "CN=forged leaf")
    with pytest.raises(CertificateNotTrusted):
        ChainValidator((pki.issuing.certificate,)).verify(unread)


# --- the operator's reason for a failed chain ----------------------------------------


def refusal_for(der: bytes, anchors: tuple[x509.Certificate, ...]) -> CertificateNotTrusted:
    with pytest.raises(CertificateNotTrusted) as caught:
        ChainValidator(anchors, cache_seconds=0).verify(presented(der))
    return caught.value


def test_a_failed_chain_says_why_for_the_log_and_nothing_for_the_caller(pki: Pki) -> None:
    issuing = pki.issuing.certificate.subject.rfc4514_string()
    same_name = CertificateAuthority.root("certsas test issuing CA")
    cases = {
        # The issuing CA left out: only the root configured.
        (pki.client.der, (pki.root.certificate,)):
            f"its issuer {issuing} is not in TRUSTED_CA_CERTS (which holds "
            f"{pki.root.certificate.subject.rfc4514_string()}): it comes from another CA, or "
            f"{issuing} is an intermediate CA missing there",
        (pki.client.der, (pki.stranger.certificate,)): f"its issuer {issuing} is not in",
        (pki.client.der, (same_name.certificate,)):
            f"its issuer is named {issuing}, but the CA of that name in TRUSTED_CA_CERTS did "
            "not sign it",
        (pki.issuing.issue("srv", eku=(ExtendedKeyUsageOID.SERVER_AUTH,)).der,
         (pki.issuing.certificate,)):
            "the extended key usage does not include clientAuth (it lists serverAuth)",
        (pki.issuing.issue("none", eku=None).der, (pki.issuing.certificate,)):
            "the certificate has no extended key usage extension (clientAuth is required)",
    }
    for (der, anchors), reason in cases.items():
        refusal = refusal_for(der, anchors)
        assert refusal.detail.startswith(f"chain validation failed: {reason}"), refusal.detail
        assert "candidates exhausted" not in refusal.detail
        assert refusal.message == CertificateNotTrusted.default_message
