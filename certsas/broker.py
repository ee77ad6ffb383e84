"""The token path, as a list: read → dates → chain → registry → scope → revocation → sign → audit.

Cheapest checks first, so the first failing one names the error (SPEC §1). Two calls
leave the process before signing: the registry read (one Table point read, often
cached) for a certificate whose chain is valid, and revocation (OCSP, CRL) only for a
certificate that has passed everything else. The audit write follows signing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from certsas.audit import AuditRecord, AuditSink, Decision, log_decision
from certsas.clientcert import PresentedCertificate, read_forwarded_certificate
from certsas.clock import Clock, iso, system_clock
from certsas.errors import Refusal
from certsas.registry import Registry, match_registration
from certsas.revocation import RevocationChecker, RevocationOutcome
from certsas.sas import SasSigner, SignedToken
from certsas.scope import Grant, decide_scope, parse_token_request
from certsas.verification import ChainValidator, check_dates


@dataclass(frozen=True)
class RequestInfo:
    """What the HTTP layer knows about the caller besides the certificate and body."""

    request_id: str
    client_address: str | None = None


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
        presented: PresentedCertificate | None = None
        try:
            presented = read_forwarded_certificate(headers, self.header_name)
            issued = self._issue(presented, body, info)
        except Refusal as refusal:
            self._log(info, presented, outcome="refused", error=refusal.code,
                      reason=refusal.detail, revocation=refusal.revocation)
            raise
        except Exception as exc:
            # The message may quote request input or a key; the type is enough to find it.
            self._log(info, presented, outcome="error", error="internal_error",
                      reason=type(exc).__name__)
            raise
        grant = issued.grant
        self._log(info, presented, outcome="issued", container=grant.container, blob=grant.blob,
                  permissions=grant.permissions, expires_on=issued.signed.expires_on,
                  revocation=issued.revocation.value)
        return issued

    @staticmethod
    def _log(info: RequestInfo, presented: PresentedCertificate | None, *, outcome: str,
             **fields: Any) -> None:
        log_decision(Decision(
            request_id=info.request_id, outcome=outcome, client_address=info.client_address,
            thumbprint=presented.thumbprint if presented else None,
            subject=presented.subject if presented else None, **fields,
        ))

    def _issue(self, presented: PresentedCertificate, body: bytes, info: RequestInfo) -> IssuedToken:
        now = self.clock()
        check_dates(presented.certificate, now)
        verified = self.validator.verify(presented)
        registration = match_registration(
            self.registry.get(presented.thumbprint), presented.certificate, presented.der
        )
        grant = decide_scope(
            parse_token_request(body), registration,
            default_ttl_minutes=self.default_ttl_minutes, max_ttl_minutes=self.max_ttl_minutes,
        )
        revocation = self.revocation.check(verified)
        signed = self.signer.sign(grant, now, request_id=info.request_id)
        # Recorded before it is returned: a token the audit cannot hold is not issued.
        self.audit.record(AuditRecord(
            time=now, request_id=info.request_id, thumbprint=presented.thumbprint,
            subject=presented.subject, container=grant.container, blob=grant.blob,
            permissions=grant.permissions, expires_on=signed.expires_on,
            client_address=info.client_address, signature_sha256=signed.signature_sha256,
            revocation=revocation.value,
        ))
        return IssuedToken(signed, grant, revocation)
