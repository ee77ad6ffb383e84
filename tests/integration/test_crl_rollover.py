"""A CA key rollover (SPEC §2a, issue 18 item 7): the CA renews its key under the same name,
and its CRLs, now signed with the new key, still answer for leaves issued under the old one.

RFC 5280 §6.3.3 (f) validates the CRL issuer's path on its own; certsas accepts a CRL signed
by a certificate in TRUSTED_CA_CERTS with the leaf issuer's name and cRLSign, current.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from certsas.config import RevocationMode, RevocationSettings, RevocationSource
from certsas.crl.checker import CrlChecker
from certsas.devtools.crl_server import CrlServer
from certsas.devtools.pki import CertificateAuthority, PrivateKey, new_key
from certsas.errors import CertificateRevoked
from certsas.netfetch import NetFetcher
from certsas.revocation import Status
from certsas.runtime import build_revocation
from tests.support.azurite import Azurite
from tests.support.pki import Pki
from tests.support.stack import app_env, build_stack, forwarded

ISSUING_NAME = "certsas test issuing CA"  # the name tests/conftest.py gives pki.issuing


@pytest.fixture
def server() -> Iterator[CrlServer]:
    with CrlServer() as crl_server:
        yield crl_server


@pytest.fixture(scope="module")
def renewed(pki: Pki) -> CertificateAuthority:
    """The issuing CA after its key rollover: same name, new key, new certificate."""
    ca = pki.root.intermediate(ISSUING_NAME)
    assert ca.certificate.subject == pki.issuing.certificate.subject
    assert ca.certificate.public_key() != pki.issuing.certificate.public_key()
    return ca


def source(server: CrlServer, *anchors: x509.Certificate) -> CrlChecker:
    return CrlChecker(crl_url=None, timeout_seconds=2.0, max_bytes=1 << 20,
                      fetcher=NetFetcher(blocked_networks=()), anchors=anchors)


def anchors(pki: Pki, *more: x509.Certificate) -> tuple[x509.Certificate, ...]:
    return (pki.issuing.certificate, *more, pki.root.certificate)


def test_a_crl_signed_by_the_renewed_ca_answers_for_leaves_of_the_old_key(
        pki: Pki, renewed: CertificateAuthority, server: CrlServer) -> None:
    good, revoked = (pki.issuing.issue(name, crl_url=server.url()) for name in ("old-1", "old-2"))
    server.publish("/ca.crl", renewed.crl([(revoked.certificate.serial_number, None)]))
    crl = source(server, *anchors(pki, renewed.certificate))
    assert crl.verdict(pki.verified(good)).status is Status.GOOD
    assert crl.verdict(pki.verified(revoked)).status is Status.REVOKED
    # The CA's old key still signs for its own leaves as before.
    server.publish("/ca.crl", pki.issuing.crl([(revoked.certificate.serial_number, None)]))
    assert source(server, *anchors(pki)).verdict(pki.verified(revoked)).status is Status.REVOKED


def test_the_renewed_ca_must_be_a_configured_trust_anchor(
        pki: Pki, renewed: CertificateAuthority, server: CrlServer) -> None:
    leaf = pki.issuing.issue("old-3", crl_url=server.url())
    server.publish("/ca.crl", renewed.crl([]))
    verdict = source(server, *anchors(pki)).verdict(pki.verified(leaf))
    assert verdict.status is Status.UNAVAILABLE
    assert "does not verify with the issuing CA's key" in verdict.detail


def _renewed_without_crl_sign(pki: Pki) -> tuple[x509.Certificate, PrivateKey]:
    key = new_key()
    now = datetime.now(UTC)
    usage = x509.KeyUsage(digital_signature=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=True, crl_sign=False, encipher_only=False,
                          decipher_only=False)
    return (x509.CertificateBuilder().subject_name(pki.issuing.certificate.subject)
            .issuer_name(pki.root.certificate.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage, critical=True)
            .sign(pki.root.key, hashes.SHA256())), key


@pytest.mark.parametrize("case", ["no cRLSign", "expired", "another name"])
def test_a_renewed_certificate_that_may_not_sign_crls_is_not_used(
        pki: Pki, server: CrlServer, case: str) -> None:
    leaf = pki.issuing.issue(f"old-{case}", crl_url=server.url())
    if case == "no cRLSign":
        certificate, key = _renewed_without_crl_sign(pki)
        crl = (x509.CertificateRevocationListBuilder().issuer_name(certificate.subject)
               .last_update(datetime.now(UTC) - timedelta(minutes=1))
               .next_update(datetime.now(UTC) + timedelta(days=1))
               .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    elif case == "expired":
        old = pki.root.intermediate(ISSUING_NAME, not_before=datetime.now(UTC) - timedelta(days=3),
                                    not_after=datetime.now(UTC) - timedelta(days=1))
        certificate, crl = old.certificate, old.crl([])
    else:  # a CA of another name signs a CRL in the issuing CA's name
        other = pki.root.intermediate("certsas test other CA")
        certificate = other.certificate
        crl = (x509.CertificateRevocationListBuilder().issuer_name(pki.issuing.certificate.subject)
               .last_update(datetime.now(UTC) - timedelta(minutes=1))
               .next_update(datetime.now(UTC) + timedelta(days=1))
               .sign(other.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    server.publish("/ca.crl", crl)
    verdict = source(server, *anchors(pki, certificate)).verdict(pki.verified(leaf))
    assert verdict.status is Status.UNAVAILABLE and "CRL signature" in verdict.detail


def test_the_function_uses_trusted_ca_certs_for_the_renewed_ca(
        monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki,
        renewed: CertificateAuthority, fresh_tables: tuple[str, str], server: CrlServer) -> None:
    good, revoked = (pki.issuing.issue(name, crl_url=server.url())
                     for name in ("fn-old-good", "fn-old-revoked"))
    server.publish("/ca.crl", renewed.crl([(revoked.certificate.serial_number, None)]))
    bundle = pki.trust_bundle + renewed.issued.pem.decode("ascii")
    env = app_env(azurite, bundle, fresh_tables, REVOCATION_MODE="require",
                  REVOCATION_SOURCES="crl")
    stack = build_stack(monkeypatch, env, azurite.connection_string)
    stack.register(good)
    stack.register(revoked)
    assert stack.call(forwarded(good)).status == 200
    answer = stack.call(forwarded(revoked))
    assert (answer.status, answer.error) == (403, "certificate_revoked")


def test_build_revocation_hands_the_anchors_to_the_crl_source(
        pki: Pki, renewed: CertificateAuthority, server: CrlServer) -> None:
    leaf = pki.issuing.issue("built", crl_url=server.url())
    server.publish("/ca.crl", renewed.crl([(leaf.certificate.serial_number, None)]))
    settings = RevocationSettings(mode=RevocationMode.SOFT_FAIL, sources=(RevocationSource.CRL,),
                                  blocked_networks=())
    with pytest.raises(CertificateRevoked):
        build_revocation(settings, anchors=anchors(pki, renewed.certificate)).check(
            pki.verified(leaf))
