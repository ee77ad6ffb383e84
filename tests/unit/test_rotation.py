"""``POST /api/rotate`` with in-memory seams: each §4a check, each key type's proof, the write."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from certsas import http
from certsas.broker import RequestInfo, TokenBroker
from certsas.devtools.pki import CertificateAuthority, Issued, new_leaf_key
from certsas.errors import (
    CertificateRevoked,
    Refusal,
    RevocationStatusUnknown,
    RevocationUnavailable,
)
from certsas.grants import AccessGrant
from certsas.registration import Registration
from certsas.rotation import Rotator
from certsas.sas import AccountKeySigner
from certsas.successor import MAX_SUCCESSOR_DER_BYTES, parse_rotate_request, proof_message
from certsas.thumbprints import sha256_thumbprint
from certsas.verification import ChainValidator
from tests.support.certforge import duplicate_extension, invalid_utf8_subject, invalid_version
from tests.support.fuzz import pem_text
from tests.support.memory import (
    DecisionLines,
    MemoryAudit,
    MemoryRegistrations,
    MemoryRotationAudit,
    RecordingRevocation,
)
from tests.support.ocsp_faults import sign_sha256
from tests.support.pki import Pki
from tests.support.rotation import proof, rotate_body


@dataclass
class Rig:
    rotator: Rotator
    store: MemoryRegistrations
    audit: MemoryRotationAudit
    revocation: RecordingRevocation
    current: Issued
    registration: Registration

    def rotate(self, body: bytes, issued: Issued | None = None, request_id: str = "r") -> dict[str, str]:
        rotated = self.rotator.rotate(
            {"X-ARR-ClientCert": base64.b64encode((issued or self.current).der).decode()},
            body, RequestInfo(request_id, "192.0.2.9"))
        return rotated.to_json()

    def refusal(self, body: bytes, issued: Issued | None = None) -> Refusal:
        with pytest.raises(Refusal) as caught:
            self.rotate(body, issued)
        return caught.value


def make_rig(pki: Pki, *, anchors: tuple[x509.Certificate, ...] | None = None,
             allow: bool = True, current: Issued | None = None) -> Rig:
    store = MemoryRegistrations()
    revocation = RecordingRevocation()
    broker = TokenBroker(
        header_name="X-ARR-ClientCert",
        validator=ChainValidator(anchors or (pki.issuing.certificate,)),
        registry=store, revocation=revocation,
        signer=AccountKeySigner("acct", "a2V5", "https://acct.blob.core.windows.net"),
        audit=MemoryAudit(), default_ttl_minutes=15, max_ttl_minutes=60,
    )
    current = current or pki.issuing.issue("partner-a", organization="Contoso")
    registration = Registration.with_grants(
        current.certificate, (AccessGrant.of("partner", prefix="in/", permissions="cw"),
                              AccessGrant.of("reports", permissions="rl", max_ttl_minutes=5)),
        description="partner A", allow_rotation=allow)
    store.entries[registration.thumbprint] = registration
    audit = MemoryRotationAudit()
    return Rig(Rotator(broker, store, audit), store, audit, revocation, current, registration)


@pytest.mark.parametrize("kind", ["rsa", "ec", "ed25519"])
def test_a_successor_is_registered_with_the_current_ones_grants(
        pki: Pki, decisions: DecisionLines, kind: str) -> None:
    rig = make_rig(pki)
    successor = pki.issuing.successor(rig.current, key=new_leaf_key(kind))
    answer = rig.rotate(rotate_body(rig.current, successor), request_id="rot-1")
    thumbprint = sha256_thumbprint(successor.der)
    assert answer == {"thumbprint": thumbprint, "rotated_from": rig.registration.thumbprint,
                      "not_after": successor.certificate.not_valid_after_utc.strftime(
                          "%Y-%m-%dT%H:%M:%SZ")}
    new = rig.store.entries[thumbprint]
    assert (new.grants, new.description, new.allow_rotation, new.rotated_from, new.enabled) == (
        rig.registration.grants, "partner A", True, rig.registration.thumbprint, True)
    # The current registration is left as it is: both work until the operator acts.
    assert rig.store.entries[rig.registration.thumbprint] == rig.registration
    (record,) = rig.audit.records
    assert (record.thumbprint, record.successor, record.request_id, record.client_address) == (
        rig.registration.thumbprint, thumbprint, "rot-1", "192.0.2.9")
    # Revocation: the current certificate's, then the successor's.
    assert rig.revocation.checked == [rig.registration.thumbprint, thumbprint]
    (line,) = decisions.decisions
    assert (line["outcome"], line["action"], line["successor"]) == ("rotated", "rotate", thumbprint)


def test_rotation_must_be_allowed(pki: Pki) -> None:
    rig = make_rig(pki, allow=False)
    successor = pki.issuing.successor(rig.current)
    refusal = rig.refusal(rotate_body(rig.current, successor))
    assert (refusal.code, refusal.status) == ("rotation_not_allowed", 403)


def test_the_current_certificate_passes_the_token_paths_checks(pki: Pki) -> None:
    rig = make_rig(pki)
    successor = pki.issuing.successor(rig.current)
    body = rotate_body(rig.current, successor)
    stranger = pki.stranger.issue("partner-a", organization="Contoso")
    assert rig.refusal(body, stranger).code == "certificate_not_trusted"
    unregistered = pki.issuing.issue("partner-a", organization="Contoso")
    assert rig.refusal(body, unregistered).code == "certificate_not_registered"
    rig.store.entries[rig.registration.thumbprint] = replace(rig.registration, enabled=False)
    assert rig.refusal(body).code == "certificate_not_registered"
    with pytest.raises(Refusal) as caught:
        rig.rotator.rotate({}, body, RequestInfo("r"))
    assert caught.value.code == "client_certificate_missing"


def test_a_revoked_current_certificate_cannot_rotate(pki: Pki) -> None:
    rig = make_rig(pki)
    rig.revocation.refusal = CertificateRevoked("revoked")
    rig.revocation.only = rig.registration.thumbprint
    successor = pki.issuing.successor(rig.current)
    assert rig.refusal(rotate_body(rig.current, successor)).code == "certificate_revoked"
    assert rig.store.entries.keys() == {rig.registration.thumbprint}


@pytest.mark.parametrize("body", [
    b"", b"not json", b"[]", b'{"certificate": "x"}', b'{"signature": "AA=="}',
    b'{"certificate": "x", "signature": "AA==", "extra": 1}',
    b'{"certificate": 1, "signature": "AA=="}', b'{"certificate": "x", "signature": null}',
    b'{"certificate": "x", "signature": "not base64!"}', b'{"certificate": "x", "signature": ""}',
    b'{"certificate": "x", "signature": "\\u00e9"}', b"[" * 100_000,
])
def test_a_body_that_is_not_the_rotation_object_is_invalid_request(pki: Pki, body: bytes) -> None:
    rig = make_rig(pki)
    assert rig.refusal(body).code == "invalid_request"


def successor_refusal(rig: Rig, successor: Issued | bytes, *, signature: str | None = None,
                      ) -> tuple[str, str, str]:
    pem = successor if isinstance(successor, bytes) else successor.pem
    sig = signature if signature is not None else (
        proof(rig.current, successor) if isinstance(successor, Issued) else "AAAA")
    body = json.dumps({"certificate": pem.decode("ascii", "replace"), "signature": sig})
    refusal = rig.refusal(body.encode())
    return refusal.code, refusal.message, refusal.detail


def test_1_a_successor_that_does_not_parse(pki: Pki) -> None:
    rig = make_rig(pki)
    two = pki.issuing.successor(rig.current).pem + pki.issuing.successor(rig.current).pem
    # The last three were 500s in the fuzz: parse errors that are not ValueError.
    forged = [pem_text(der).encode() for der in (invalid_version(pki.issuing),
                                                  duplicate_extension(pki.issuing),
                                                  invalid_utf8_subject(pki.issuing))]
    for pem in (b"not a certificate", two,
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", *forged):
        code, message, _ = successor_refusal(rig, pem)
        assert (code, message) == ("successor_invalid", "The successor certificate is not one "
                                                        "PEM X.509 certificate.")


def test_1_a_successor_too_large_to_be_forwarded_later(pki: Pki) -> None:
    """Its base64 DER would not fit the 16 KiB header that presents it (SPEC §2): refused as
    a successor, not a 503 from a Table property too large at the insert."""
    rig = make_rig(pki)
    names = [f"host-{n:04d}.partner.example" for n in range(600)]
    big = pki.issuing.issue("partner-a", organization="Contoso", dns_names=names,
                            subject=rig.current.certificate.subject,
                            not_after=datetime.now(UTC) + timedelta(days=400))
    assert len(big.der) > MAX_SUCCESSOR_DER_BYTES
    code, message, detail = successor_refusal(rig, big)
    assert code == "successor_invalid"
    assert message == (f"The successor certificate is larger than {MAX_SUCCESSOR_DER_BYTES} "
                       "bytes (DER): it could not be forwarded in a request header.")
    assert detail.startswith("successor of ")


def test_2_a_successor_that_does_not_chain(pki: Pki) -> None:
    rig = make_rig(pki)
    # Another CA, the same subject: never a successor.
    same_subject = pki.stranger.successor(rig.current)
    code, message, detail = successor_refusal(rig, same_subject)
    assert (code, "does not chain" in message) == ("successor_invalid", True)
    assert detail.startswith("successor not trusted")
    no_client_auth = pki.issuing.issue("partner-a", organization="Contoso", eku=None,
                                       not_after=datetime.now(UTC) + timedelta(days=400))
    assert "does not chain" in successor_refusal(rig, no_client_auth)[1]
    weak = pki.issuing.successor(rig.current, key=rsa.generate_private_key(65537, 1024))  # noqa: S505
    code, message, detail = successor_refusal(rig, weak)
    assert "does not chain" in message and "1024 bits" in detail


def test_3_a_successor_with_another_issuer_or_subject(pki: Pki) -> None:
    # Two trusted issuing CAs: the chain holds, the issuer differs.
    other_issuing = pki.root.intermediate("certsas test second issuing CA")
    rig = make_rig(pki, anchors=(pki.issuing.certificate, other_issuing.certificate))
    from_other = other_issuing.successor(rig.current)
    assert successor_refusal(rig, from_other)[1] == \
        "The successor certificate has another issuer than the current one."
    renamed = pki.issuing.issue("partner-b", organization="Contoso",
                                not_after=datetime.now(UTC) + timedelta(days=400))
    assert successor_refusal(rig, renamed)[1] == \
        "The successor certificate has another subject than the current one."


def test_4_a_successor_expired_not_yet_valid_or_ending_no_later(pki: Pki) -> None:
    now = datetime.now(UTC)
    rig = make_rig(pki, current=pki.issuing.issue(
        "partner-a", organization="Contoso", not_after=now + timedelta(days=30)))
    expired = pki.issuing.issue("partner-a", organization="Contoso",
                                not_before=now - timedelta(days=60), not_after=now - timedelta(days=1))
    future = pki.issuing.issue("partner-a", organization="Contoso",
                               not_before=now + timedelta(days=1), not_after=now + timedelta(days=90))
    for successor in (expired, future):
        code, message, _ = successor_refusal(rig, successor)
        assert (code, message) == ("successor_invalid",
                                   "The successor certificate is outside its validity period.")
    sooner = pki.issuing.successor(rig.current, not_after=now + timedelta(days=29))
    assert successor_refusal(rig, sooner)[1] == \
        "The successor certificate must end later than the current one."


def test_5_a_successor_already_registered(pki: Pki) -> None:
    rig = make_rig(pki)
    successor = pki.issuing.successor(rig.current)
    taken = Registration.for_certificate(successor.certificate, container="elsewhere")
    rig.store.entries[taken.thumbprint] = taken
    assert successor_refusal(rig, successor)[1] == \
        "The successor certificate is already registered."
    # The current certificate itself is no successor either.
    assert successor_refusal(rig, rig.current)[0] == "successor_invalid"
    assert rig.store.entries[taken.thumbprint] == taken


@pytest.mark.parametrize("kind", ["rsa", "ec", "ed25519"])
def test_6_a_proof_made_with_another_key_or_over_another_text(pki: Pki, kind: str) -> None:
    rig = make_rig(pki)
    successor = pki.issuing.successor(rig.current, key=new_leaf_key(kind))
    # The current certificate's key, not the successor's: the caller lacks the new key.
    code, message, _ = successor_refusal(rig, successor,
                                         signature=proof(rig.current, successor,
                                                         key=rig.current.key))
    assert code == "successor_invalid" and message.startswith(
        "The signature is not the successor key's signature over certsas-rotate:")
    # The right key over the thumbprints the wrong way round.
    swapped = proof_message(sha256_thumbprint(successor.der), sha256_thumbprint(rig.current.der))
    signature = base64.b64encode(sign_sha256(successor.key, swapped)).decode()
    assert successor_refusal(rig, successor, signature=signature)[0] == "successor_invalid"
    assert rig.store.entries.keys() == {rig.registration.thumbprint}


@pytest.mark.parametrize(("refusal", "code", "message"), [
    (CertificateRevoked("crl says revoked"), "successor_invalid",
     "The successor certificate is revoked."),
    (RevocationStatusUnknown("unknown"), "successor_invalid",
     "The successor certificate is of unknown revocation status."),
    (RevocationUnavailable("down"), "revocation_unavailable",
     "The revocation status of the successor certificate could not be checked."),
])
def test_7_the_successors_revocation(pki: Pki, refusal: Refusal, code: str, message: str) -> None:
    rig = make_rig(pki)
    successor = pki.issuing.successor(rig.current)
    rig.revocation.refusal, rig.revocation.only = refusal, sha256_thumbprint(successor.der)
    got = rig.refusal(rotate_body(rig.current, successor))
    assert (got.code, got.message) == (code, message)
    assert rig.store.entries.keys() == {rig.registration.thumbprint} and not rig.audit.records


def test_no_201_without_its_audit_record_and_the_orphan_is_named(
        pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    """The app's role may insert a registration but never delete one (infra/app/rbac.bicep),
    so the insert stands: the caller gets 503, and an error line names the successor
    registered without its record, for the operator to check and keep or remove."""
    rig = make_rig(pki)
    rig.audit.fail = True
    successor = pki.issuing.successor(rig.current)
    thumbprint = sha256_thumbprint(successor.der)
    with caplog.at_level(logging.ERROR, logger="certsas.rotation"):
        assert rig.refusal(rotate_body(rig.current, successor)).code == "dependency_unavailable"
    assert not rig.audit.records
    assert rig.store.entries.keys() == {rig.registration.thumbprint, thumbprint}
    (line,) = [r.getMessage() for r in caplog.records if r.name == "certsas.rotation"]
    assert f"successor {thumbprint} of {rig.registration.thumbprint}" in line
    assert f"`certsas show {thumbprint}`" in line
    # Asked again, the insert is what it always is: the successor is taken, nothing else.
    rig.audit.fail = False
    again = rig.refusal(rotate_body(rig.current, successor))
    assert (again.code, again.message) == (
        "successor_invalid", "The successor certificate is already registered.")
    assert not rig.audit.records


def test_the_successor_rotates_in_turn(pki: Pki) -> None:
    rig = make_rig(pki)
    second = pki.issuing.successor(rig.current)
    rig.rotate(rotate_body(rig.current, second))
    third = pki.issuing.successor(second)
    answer = rig.rotate(rotate_body(second, third), second)
    assert answer["rotated_from"] == sha256_thumbprint(second.der)


def test_every_call_is_one_decision_line_and_the_http_answer(
        pki: Pki, decisions: DecisionLines) -> None:
    rig = make_rig(pki)
    successor = pki.issuing.successor(rig.current)
    headers = {"X-ARR-ClientCert": base64.b64encode(rig.current.der).decode()}
    for body, status in ((b"{}", 400), (rotate_body(rig.current, successor), 201),
                         (rotate_body(rig.current, successor), 403)):
        request = func.HttpRequest(method="POST", url="http://localhost/api/rotate",
                                   headers=headers, body=body)
        response = http.rotate(request, lambda: rig.rotator, "req")
        assert response.status_code == status
        assert response.headers["Cache-Control"] == "no-store"
    assert [d["outcome"] for d in decisions.decisions] == ["refused", "rotated", "refused"]
    assert decisions.decisions[2]["reason"] == "successor already registered"
    assert decisions.decisions[2]["successor"] == sha256_thumbprint(successor.der)


def test_parse_keeps_the_signature_bytes() -> None:
    body = json.dumps({"certificate": "x", "signature": base64.b64encode(b"\x01\x02").decode()})
    assert parse_rotate_request(body.encode()).signature == b"\x01\x02"


def test_a_stranger_ca_with_the_issuing_cas_name_is_not_trusted(pki: Pki) -> None:
    """The same subject and the same issuer *name*, but signed by a key nobody trusts."""
    rig = make_rig(pki)
    impostor = CertificateAuthority.root("certsas test issuing CA")
    assert "does not chain" in successor_refusal(rig, impostor.successor(rig.current))[1]
