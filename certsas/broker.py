"""The token path, as a list: read → dates → chain → registry → scope → revocation → sign → audit.

Cheapest checks first, so the first failing one names the error (SPEC §1). Two calls
leave the process before signing: the registry read (one Table point read, often
cached) for a certificate whose chain is valid, and revocation (OCSP, CRL) only for a
certificate that has passed everything else. The audit write follows signing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from certsas.audit import AuditRecord, AuditSink, Decision, log_decision
from certsas.clientcert import PresentedCertificate, read_forwarded_certificate
from certsas.clock import Clock, iso, system_clock
from certsas.errors import Refusal
from certsas.registration import Registration, match_registration
from certsas.registry import Registry
from certsas.revocation import RevocationChecker, RevocationOutcome
from certsas.sas import SasSigner, SignedToken
from certsas.scope import Grant, decide_scope, parse_token_request
from certsas.verification import ChainValidator, VerifiedCertificate, check_dates


@dataclass(frozen=True)
class RequestInfo:
    """What the HTTP layer knows about the caller besides the certificate and body."""

    request_id: str
    client_address: str | None = None


class DecisionLog:
    """The one decision line of a call (SPEC §5): who called, once the header has been
    read, and how the call ended."""

    def __init__(self, info: RequestInfo, action: str | None = None) -> None:
        self.info = info
        self.action = action
        self.presented: PresentedCertificate | None = None
        self.known: dict[str, Any] = {}  # fields learnt on the way (a successor's thumbprint)

    def write(self, outcome: str, **fields: Any) -> None:
        presented = self.presented
        log_decision(Decision(
            request_id=self.info.request_id, outcome=outcome,
            client_address=self.info.client_address, action=self.action,
            thumbprint=presented.thumbprint if presented else None,
            subject=presented.subject if presented else None, **{**self.known, **fields},
        ))


@contextmanager
def one_decision(info: RequestInfo, action: str | None = None) -> Iterator[DecisionLog]:
    """Logs the refusal or the bug that ends the block (the bug with its exception type
    only, before it propagates as a 500); the block logs its own success, last."""
    log = DecisionLog(info, action)
    try:
        yield log
    except Refusal as refusal:
        log.write("refused", error=refusal.code, reason=refusal.detail,
                  revocation=refusal.revocation)
        raise
    except Exception as exc:
        # The message may quote request input or a key; the type is enough to find it.
        log.write("error", error="internal_error", reason=type(exc).__name__)
        raise


@dataclass(frozen=True)
class Admitted:
    """A caller that passed header → dates → chain → registry, and when it did."""

    verified: VerifiedCertificate
    registration: Registration
    now: datetime

    @property
    def presented(self) -> PresentedCertificate:
        return self.verified.presented


@dataclass(frozen=True)
class IssuedToken:
    signed: SignedToken
    grant: Grant
    revocation: RevocationOutcome

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.signed.token,
            "url": self.signed.url,
            "expires_on": iso(self.signed.expires_on),
            "permissions": self.grant.permissions,
            "resource": self.grant.resource,
            "container": self.grant.container,
            "blob": self.grant.blob,
        }


@dataclass(frozen=True)
class TokenBroker:
    header_name: str
    validator: ChainValidator
    registry: Registry
    revocation: RevocationChecker
    signer: SasSigner
    audit: AuditSink
    default_ttl_minutes: int
    max_ttl_minutes: int
    clock: Clock = system_clock

    def issue(self, headers: Mapping[str, str], body: bytes, info: RequestInfo) -> IssuedToken:
        """A token for the forwarded certificate, or a :class:`Refusal`; logs the decision.

        Every call logs exactly one decision line: issued, refused, or (a bug, whatever
        the input) ``error`` with the exception's type only, before it propagates as a 500.
        """
        with one_decision(info) as log:
            issued = self._issue(self.admit(headers, log), body, info)
            grant = issued.grant
            log.write("issued", container=grant.container, prefix=grant.prefix or None,
                      blob=grant.blob, permissions=grant.permissions,
                      expires_on=issued.signed.expires_on, revocation=issued.revocation.value)
        return issued

    def admit(self, headers: Mapping[str, str], log: DecisionLog) -> Admitted:
        """header → dates → chain → registry: the checks ``/api/token`` and ``/api/rotate``
        share (SPEC §1, §4a); the caller's certificate goes to ``log`` once it is read."""
        presented = read_forwarded_certificate(headers, self.header_name)
        log.presented = presented
        now = self.clock()
        check_dates(presented.certificate, now)
        verified = self.validator.verify(presented)
        registration = match_registration(
            self.registry.get(presented.thumbprint), presented.certificate, presented.der
        )
        return Admitted(verified, registration, now)

    def _issue(self, admitted: Admitted, body: bytes, info: RequestInfo) -> IssuedToken:
        presented, now = admitted.presented, admitted.now
        grant = decide_scope(
            parse_token_request(body), admitted.registration,
            default_ttl_minutes=self.default_ttl_minutes, max_ttl_minutes=self.max_ttl_minutes,
        )
        revocation = self.revocation.check(admitted.verified)
        signed = self.signer.sign(grant, now, request_id=info.request_id)
        # Recorded before it is returned: a token the audit cannot hold is not issued.
        self.audit.record(AuditRecord(
            time=now, request_id=info.request_id, thumbprint=presented.thumbprint,
            subject=presented.subject, container=grant.container, blob=grant.blob,
            permissions=grant.permissions, expires_on=signed.expires_on,
            client_address=info.client_address, signature_sha256=signed.signature_sha256,
            revocation=revocation.value, prefix=grant.prefix,
        ))
        return IssuedToken(signed, grant, revocation)
