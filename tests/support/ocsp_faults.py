"""Ways for the test OCSP responder to misbehave, and a tiny DER codec to help.

``cryptography``'s ``OCSPResponseBuilder`` signs exactly one SingleResponse and a
correct signature; two of the faults need a response it cannot build, so they
edit the DER it built (and re-sign with ``cryptography`` where the test needs a
valid signature over the edited bytes). The codec handles definite lengths only,
which is all DER has.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from certsas.devtools.ocsp_signing import Fault, Reply, ResponsePlan, SignerKey, sign

SEQUENCE, BIT_STRING, OCTET_STRING, CONTEXT_0 = 0x30, 0x03, 0x04, 0xA0


# --- DER ---------------------------------------------------------------------------


def der_children(content: bytes) -> list[tuple[int, bytes]]:
    """The (tag, content) of each TLV in ``content``; single-byte tags, definite lengths."""
    items = []
    offset = 0
    while offset < len(content):
        tag, length = content[offset], content[offset + 1]
        offset += 2
        if length & 0x80:
            size = length & 0x7F
            length = int.from_bytes(content[offset:offset + size], "big")
            offset += size
        items.append((tag, content[offset:offset + length]))
        offset += length
    return items


def der(tag: int, content: bytes) -> bytes:
    if len(content) < 0x80:
        return bytes([tag, len(content)]) + content
    size = (len(content).bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + len(content).to_bytes(size, "big") + content


def der_content(encoded: bytes) -> bytes:
    """The content of one whole TLV."""
    [(_, content)] = der_children(encoded)
    return content


def _basic_response(response_der: bytes) -> list[tuple[int, bytes]]:
    """The BasicOCSPResponse's elements: tbsResponseData, signatureAlgorithm, signature, certs."""
    _status, (_, response_bytes) = der_children(der_content(response_der))
    _oid, (_, basic) = der_children(der_content(response_bytes))
    return der_children(der_content(basic))


def _rewrap(response_der: bytes, basic_elements: list[tuple[int, bytes]]) -> bytes:
    """The OCSPResponse again, around new BasicOCSPResponse elements."""
    status, (_, response_bytes) = der_children(der_content(response_der))
    oid, _ = der_children(der_content(response_bytes))
    basic = der(SEQUENCE, b"".join(der(tag, content) for tag, content in basic_elements))
    inner = der(SEQUENCE, der(*oid) + der(OCTET_STRING, basic))
    return der(SEQUENCE, der(*status) + der(CONTEXT_0, inner))


def sign_sha256(key: SignerKey, data: bytes) -> bytes:
    """RSA PKCS#1 v1.5 or ECDSA with SHA-256, or Ed25519: the signatures certsas accepts.
    ECDSA is RFC 6979's: the same bytes sign the same way, so a seeded fuzz reproduces."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key.sign(data)


# --- faults ------------------------------------------------------------------------


class PlanFault(Fault):
    """Change what is signed: ``PlanFault(lambda plan: plan.replace(serial_number=1))``."""

    def __init__(self, change: Callable[[ResponsePlan], ResponsePlan]) -> None:
        self.change = change

    def plan(self, plan: ResponsePlan) -> ResponsePlan:
        return self.change(plan)


class ReplyFault(Fault):
    """Change what is sent, after signing."""

    def __init__(self, change: Callable[[Reply], Reply]) -> None:
        self.change = change

    def reply(self, reply: Reply, plan: ResponsePlan | None) -> Reply:
        return self.change(reply)


def http_status(status: int) -> Fault:
    return ReplyFault(lambda reply: dataclasses.replace(reply, status=status, body=b"oops",
                                                        content_type="text/plain"))


def response_status(status: ocsp.OCSPResponseStatus) -> Fault:
    body = ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(Encoding.DER)
    return ReplyFault(lambda reply: dataclasses.replace(reply, body=body))


def hang(seconds: float) -> Fault:
    return ReplyFault(lambda reply: dataclasses.replace(reply, delay_seconds=seconds))


class CorruptSignature(Fault):
    """Flip the last byte of the signature, as ``openssl ocsp -badsig`` does."""

    def reply(self, reply: Reply, plan: ResponsePlan | None) -> Reply:
        elements = _basic_response(reply.body)
        tag, bits = elements[2]
        assert tag == BIT_STRING
        elements[2] = (tag, bits[:-1] + bytes([bits[-1] ^ 0x01]))
        return dataclasses.replace(reply, body=_rewrap(reply.body, elements))


class SignedByAnotherKey(Fault):
    """Names the real signer, but the signature is made with ``key``."""

    def __init__(self, key: SignerKey) -> None:
        self.key = key

    def reply(self, reply: Reply, plan: ResponsePlan | None) -> Reply:
        elements = _basic_response(reply.body)
        tbs_der = der(SEQUENCE, elements[0][1])
        elements[2] = (BIT_STRING, b"\x00" + sign_sha256(self.key, tbs_der))
        return dataclasses.replace(reply, body=_rewrap(reply.body, elements))


class TwoSingleResponses(Fault):
    """Our CertID twice, "good" and then ``second``; validly signed by the real signer."""

    def __init__(self, second: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.REVOKED) -> None:
        self.second = second

    def reply(self, reply: Reply, plan: ResponsePlan | None) -> Reply:
        assert plan is not None
        other = plan.replace(
            status=self.second,
            revocation_time=(plan.this_update if self.second is ocsp.OCSPCertStatus.REVOKED
                             else None),
        )
        other_single = _single_responses(sign(other))
        elements = _basic_response(reply.body)
        tbs = der_children(elements[0][1])
        index = next(i for i, (tag, _) in enumerate(tbs) if tag == SEQUENCE)
        tbs[index] = (SEQUENCE, tbs[index][1] + other_single)
        tbs_der = der(SEQUENCE, b"".join(der(tag, content) for tag, content in tbs))
        elements[0] = (SEQUENCE, der_content(tbs_der))
        elements[2] = (BIT_STRING, b"\x00" + sign_sha256(plan.signer_key, tbs_der))
        return dataclasses.replace(reply, body=_rewrap(reply.body, elements))


def _single_responses(response_der: bytes) -> bytes:
    """The content of ``responses`` (SEQUENCE OF SingleResponse) in a signed response."""
    tbs = der_children(_basic_response(response_der)[0][1])
    return next(content for tag, content in tbs if tag == SEQUENCE)


def _resign_tbs(reply: Reply, key: SignerKey, tbs: list[tuple[int, bytes]]) -> Reply:
    """The reply with tbsResponseData made of ``tbs`` and signed again by ``key``."""
    elements = _basic_response(reply.body)
    tbs_der = der(SEQUENCE, b"".join(der(tag, content) for tag, content in tbs))
    elements[0] = (SEQUENCE, der_content(tbs_der))
    elements[2] = (BIT_STRING, b"\x00" + sign_sha256(key, tbs_der))
    return dataclasses.replace(reply, body=_rewrap(reply.body, elements))


class EditSigned(Fault):
    """Replace ``old`` by ``new`` in tbsResponseData and sign again: a validly signed oddity."""

    def __init__(self, old: bytes, new: bytes) -> None:
        self.old, self.new = old, new

    def reply(self, reply: Reply, plan: ResponsePlan | None) -> Reply:
        assert plan is not None
        tbs_der = der(SEQUENCE, _basic_response(reply.body)[0][1])
        assert tbs_der.count(self.old) == 1, "the bytes to edit must occur exactly once"
        return _resign_tbs(reply, plan.signer_key, der_children(der_content(
            tbs_der.replace(self.old, self.new))))


class SingleResponseExtension(Fault):
    """Add a singleExtensions field to the SingleResponse (critical or not), signed again."""

    OID = b"\x06\x0a\x2b\x06\x01\x04\x01\x82\xe3\x1f\x01\x01"  # 1.3.6.1.4.1.45471.1.1

    def __init__(self, critical: bool) -> None:
        self.critical = critical

    def reply(self, reply: Reply, plan: ResponsePlan | None) -> Reply:
        assert plan is not None
        flag = der(0x01, b"\xff") if self.critical else b""
        extension = der(SEQUENCE, self.OID + flag + der(OCTET_STRING, der(0x05, b"")))
        tbs = der_children(_basic_response(reply.body)[0][1])
        index = next(i for i, (tag, _) in enumerate(tbs) if tag == SEQUENCE)
        [(_, single)] = der_children(tbs[index][1])
        single += der(0xA1, der(SEQUENCE, extension))
        tbs[index] = (SEQUENCE, der(SEQUENCE, single))
        return _resign_tbs(reply, plan.signer_key, tbs)


def resign_edited_tbs(response_der: bytes, edit: Callable[[bytes], bytes], key: SignerKey) -> bytes:
    """The response with ``edit`` applied to tbsResponseData's content, signed again by
    ``key`` (for fuzzing: the edited bytes need not be DER)."""
    elements = _basic_response(response_der)
    content = edit(elements[0][1])
    elements[0] = (SEQUENCE, content)
    elements[2] = (BIT_STRING, b"\x00" + sign_sha256(key, der(SEQUENCE, content)))
    return _rewrap(response_der, elements)
