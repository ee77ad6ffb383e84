"""The token path with in-memory seams: check order, and any input ends in a SPEC answer."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certsas import http
from certsas.broker import RequestInfo, TokenBroker
from certsas.errors import CertificateRevoked, Refusal
from certsas.registration import Registration
from certsas.revocation import RevocationOutcome
from certsas.sas import AccountKeySigner
from certsas.verification import ChainValidator, VerifiedCertificate
from tests.support.certforge import (
    duplicate_extension,
    invalid_utf8_subject,
    invalid_version,
    nine_byte_ip_san,
    serial,
)
from tests.support.memory import (
    SPEC_CODES,
    DecisionLines,
    MemoryAudit,
    MemoryRegistry,
    RecordingRevocation,
)
from tests.support.pki import Pki


def make_broker(pki: Pki, revocation: RecordingRevocation | None = None,
                audit: MemoryAudit | None = None) -> tuple[TokenBroker, MemoryRegistry]:
    registry = MemoryRegistry()
    broker = TokenBroker(
        header_name="X-ARR-ClientCert",
        validator=ChainValidator((pki.issuing.certificate,)),
        registry=registry,
        revocation=revocation or RecordingRevocation(),
        signer=AccountKeySigner("acct", "a2V5", "https://acct.blob.core.windows.net"),
        audit=audit or MemoryAudit(),
        default_ttl_minutes=15,
        max_ttl_minutes=60,
    )
    return broker, registry


def header(der: bytes) -> dict[str, str]:
    return {"X-ARR-ClientCert": base64.b64encode(der).decode()}


def refusal_code(broker: TokenBroker, headers: dict[str, str], body: bytes = b"") -> str:
    with pytest.raises(Refusal) as caught:
        broker.issue(headers, body, RequestInfo("r"))
    return caught.value.code


def test_first_failing_check_names_the_error(pki: Pki) -> None:
    revocation = RecordingRevocation(CertificateRevoked("revoked"))
    broker, registry = make_broker(pki, revocation)
    now = datetime.now(UTC)
    expired_stranger = pki.stranger.issue("x", not_before=now - timedelta(days=2),
                                          not_after=now - timedelta(days=1))
    # Dates before chain; chain before registry; registry before scope; scope before OCSP.
    assert refusal_code(broker, header(expired_stranger.der)) == "certificate_expired"
    assert refusal_code(broker, header(pki.stranger.issue("y").der)) == "certificate_not_trusted"
    assert registry.reads == 0
    assert refusal_code(broker, header(pki.client.der), b"not json") == "certificate_not_registered"
    registry.entries[header_thumbprint(pki)] = Registration.for_certificate(
        pki.client.certificate, container="reports", permissions="r")
    assert refusal_code(broker, header(pki.client.der), b"not json") == "invalid_request"
    assert refusal_code(broker, header(pki.client.der), b'{"permissions": "w"}') == "scope_not_allowed"
    assert revocation.checked == []
    assert refusal_code(broker, header(pki.client.der)) == "certificate_revoked"
    assert revocation.checked == [header_thumbprint(pki)]


def test_no_token_without_its_audit_record(pki: Pki) -> None:
    audit = MemoryAudit(fail=True)
    broker, registry = make_broker(pki, audit=audit)
    registry.entries[header_thumbprint(pki)] = Registration.for_certificate(
        pki.client.certificate, container="reports")
    assert refusal_code(broker, header(pki.client.der)) == "dependency_unavailable"
    audit.fail = False
    issued = broker.issue(header(pki.client.der), b"", RequestInfo("r2", "198.51.100.7"))
    (record,) = audit.records
    assert (record.request_id, record.client_address) == ("r2", "198.51.100.7")
    assert record.expires_on == issued.signed.expires_on
    assert record.signature_sha256 == issued.signed.signature_sha256


def header_thumbprint(pki: Pki) -> str:
    from cryptography.hazmat.primitives import hashes

    return pki.client.certificate.fingerprint(hashes.SHA256()).hex().upper()


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    headers=st.dictionaries(
        st.sampled_from(["X-ARR-ClientCert", "x-arr-clientcert", "Other"]),
        st.text(max_size=200) | st.just("VALID"), max_size=2),
    body=st.binary(max_size=200) | st.dictionaries(
        st.sampled_from(["container", "blob", "permissions", "ttl_minutes", "x"]),
        st.none() | st.integers(-3, 90) | st.text(max_size=12), max_size=4,
    ).map(lambda d: json.dumps(d).encode()),
)
def test_any_request_gets_a_token_or_a_spec_refusal(pki: Pki, headers: dict[str, str],
                                                    body: bytes) -> None:
    broker, registry = make_broker(pki)
    registry.entries[header_thumbprint(pki)] = Registration.for_certificate(
        pki.client.certificate, container="reports", permissions="rl", max_ttl_minutes=30)
    real = base64.b64encode(pki.client.der).decode()
    headers = {k: (real if v == "VALID" else v) for k, v in headers.items()}
    try:
        issued = broker.issue(headers, body, RequestInfo("r"))
    except Refusal as refusal:
        assert refusal.code in SPEC_CODES
        assert 400 <= refusal.status < 600
    else:
        assert issued.grant.container == "reports"
        assert set(issued.grant.permissions) <= set("rl")


# --- inputs that were 500s (issue 11, item 2): a SPEC code and one decision line -------


def test_inputs_that_were_500s_are_refused_with_one_decision_each(
        pki: Pki, decisions: DecisionLines) -> None:
    broker, registry = make_broker(pki)
    registry.entries[header_thumbprint(pki)] = Registration.for_certificate(
        pki.client.certificate, container="reports", permissions="rl")
    cases = [
        (header(invalid_version(pki.issuing)), b"", "client_certificate_malformed"),
        (header(invalid_utf8_subject(pki.issuing)), b"", "client_certificate_malformed"),
        (header(nine_byte_ip_san(pki.issuing)), b"", "client_certificate_malformed"),
        (header(duplicate_extension(pki.issuing)), b"", "client_certificate_malformed"),
        (header(serial(pki.issuing, 0)), b"", "client_certificate_malformed"),
        (header(serial(pki.issuing, -1)), b"", "client_certificate_malformed"),
        (header(pki.client.der), b'{"blob": "a/\\ud800"}', "invalid_request"),
    ]
    for headers, body, code in cases:
        before = len(decisions.decisions)
        assert refusal_code(broker, headers, body) == code
        [line] = decisions.decisions[before:]
        assert (line["outcome"], line["error"]) == ("refused", code)


class ExplodingRevocation:
    def check(self, verified: VerifiedCertificate) -> RevocationOutcome:
        raise RuntimeError("sig=secret-looking-detail")


def test_an_unexpected_exception_is_one_error_decision_then_propagates(
        pki: Pki, decisions: DecisionLines, caplog: pytest.LogCaptureFixture) -> None:
    broker, registry = make_broker(pki)
    broker = dataclasses.replace(broker, revocation=ExplodingRevocation())
    registry.entries[header_thumbprint(pki)] = Registration.for_certificate(
        pki.client.certificate, container="reports")
    with pytest.raises(RuntimeError):
        broker.issue(header(pki.client.der), b"", RequestInfo("r-err", "192.0.2.1"))
    [line] = decisions.decisions
    assert line["outcome"] == "error"
    assert (line["error"], line["reason"]) == ("internal_error", "RuntimeError")
    assert line["thumbprint"] == header_thumbprint(pki)
    assert line["request_id"] == "r-err"
    assert "secret" not in caplog.text
    # Through the HTTP layer it is the bare 500, and still one decision line.
    request = func.HttpRequest(method="POST", url="http://localhost/api/token",
                               headers=header(pki.client.der), body=b"")
    response = http.token(request, lambda: broker, "r-http")
    assert response.status_code == 500
    assert json.loads(response.get_body())["error"] == "internal_error"
    assert [d["request_id"] for d in decisions.decisions] == ["r-err", "r-http"]


def test_the_decision_line_and_the_audit_record_name_the_grant_used(
        pki: Pki, decisions: DecisionLines) -> None:
    from certsas.grants import AccessGrant

    audit = MemoryAudit()
    broker, registry = make_broker(pki, audit=audit)
    registry.entries[header_thumbprint(pki)] = Registration.with_grants(
        pki.client.certificate, (AccessGrant.of("partner", prefix="in/", permissions="w"),
                                 AccessGrant.of("partner", permissions="rl")))
    broker.issue(header(pki.client.der), b'{"blob": "in/a"}', RequestInfo("r1"))
    broker.issue(header(pki.client.der), b"", RequestInfo("r2"))
    first, second = decisions.decisions
    assert (first["container"], first["prefix"], first["permissions"]) == ("partner", "in/", "w")
    assert (second["container"], "prefix" in second) == ("partner", False)
    assert [r.prefix for r in audit.records] == ["in/", ""]


def test_several_grants_still_cost_one_registry_read(pki: Pki) -> None:
    from certsas.grants import AccessGrant

    broker, registry = make_broker(pki)
    registry.entries[header_thumbprint(pki)] = Registration.with_grants(
        pki.client.certificate,
        [AccessGrant.of("partner", prefix=f"p{i:02d}/", permissions="w") for i in range(19)]
        + [AccessGrant.of("other", permissions="rl")])
    issued = broker.issue(header(pki.client.der), b'{"container": "partner", "blob": "p18/x"}',
                          RequestInfo("r"))
    assert (issued.grant.prefix, issued.grant.permissions) == ("p18/", "w")
    assert registry.reads == 1
