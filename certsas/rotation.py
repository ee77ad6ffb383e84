"""``POST /api/rotate`` (SPEC §4a): the holder of a registered certificate registers its successor.

As a list: the token path's header → dates → chain → registry (:meth:`TokenBroker.admit`,
the same code) → rotation allowed → body → the successor's checks, in §4a's order →
revocation (the current certificate's, then the successor's: the network calls last) →
the new registration inserted (the insert decides a race) → its audit record → answer.

In Azure the app may only read and insert registrations (infra/app/rbac.bicep), never
update or delete one, so an insert cannot be undone: when the audit record then cannot be
written the answer is 503 and an error line names the successor, registered without its
record, for the operator (docs/grants-and-rotation.md, "When the audit record fails").

The successor's checks, each a ``successor_invalid`` whose message says which:
parse → chain (``clientAuth``, the leaf key rules) → same issuer and subject → not
expired and ending later than the current → not registered already → the proof
(:mod:`certsas.successor`) → revocation.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError

from certsas.audit import ShardPicker, insert_once, partition_key, utc_day
from certsas.broker import Admitted, RequestInfo, TokenBroker, one_decision
from certsas.clientcert import PresentedCertificate
from certsas.clock import iso
from certsas.errors import (
    CertificateExpired,
    CertificateNotTrusted,
    CertificateRevoked,
    DependencyUnavailable,
    Refusal,
    RevocationStatusUnknown,
    RevocationUnavailable,
    RotationNotAllowed,
    SuccessorInvalid,
)
from certsas.registration import Registration
from certsas.revocation import RevocationOutcome
from certsas.successor import parse_rotate_request, proof_message, proof_verifies, read_successor
from certsas.tables import HotTable
from certsas.verification import VerifiedCertificate, check_dates

logger = logging.getLogger("certsas.rotation")

AUDIT_KIND = "rotation"
ACTION = "rotate"  # the decision lines' ``action``


class RegistrationStore(Protocol):
    """The registry as rotation needs it, and all its role allows: read, and insert
    (``ResourceExistsError`` if taken). Never replace or remove."""

    def get(self, thumbprint: str) -> Registration | None: ...

    def add(self, registration: Registration) -> None: ...


@dataclass(frozen=True)
class RotationRecord:
    """The audit record of a rotation (SPEC §5): who registered which successor."""

    time: datetime
    request_id: str
    thumbprint: str  # the current certificate, the caller
    subject: str
    successor: str
    successor_not_after: datetime
    client_address: str | None
    revocation: str


class RotationAudit(Protocol):
    def record(self, record: RotationRecord) -> None: ...


def rotation_entity(record: RotationRecord, shard: int) -> dict[str, Any]:
    """In the token records' table and partitions, told apart by ``Kind``; ``IssuedAt`` is
    the time, so ``certsas audit``'s ranges find it."""
    return {
        "PartitionKey": partition_key(utc_day(record.time), shard),
        "RowKey": uuid.uuid4().hex,
        "Kind": AUDIT_KIND,
        "IssuedAt": record.time,
        "RequestId": record.request_id,
        "Thumbprint": record.thumbprint,
        "Subject": record.subject,
        "Successor": record.successor,
        "SuccessorNotAfter": record.successor_not_after,
        "ClientAddress": record.client_address or "",
        "Revocation": record.revocation,
    }


class TableRotationAudit:
    """Rotation records in the audit table, one insert each (rotations are rare), read
    back after a 409 as token records are (:func:`certsas.audit.insert_once`)."""

    def __init__(self, table: HotTable, partitions: int) -> None:
        self._table = table
        self._shards = ShardPicker(partitions)

    def record(self, record: RotationRecord) -> None:
        try:
            insert_once(self._table, [rotation_entity(record, self._shards.pick(1))])
        except AzureError as exc:
            raise DependencyUnavailable(f"rotation record not written: {type(exc).__name__}"
                                        ) from None


@dataclass(frozen=True)
class Rotated:
    registration: Registration

    def to_json(self) -> dict[str, Any]:
        return {"thumbprint": self.registration.thumbprint,
                "not_after": iso(self.registration.not_after),
                "rotated_from": self.registration.rotated_from}


@dataclass(frozen=True)
class Rotator:
    """``/api/rotate``: the broker's checks and revocation, then the successor's."""

    broker: TokenBroker
    registrations: RegistrationStore
    audit: RotationAudit

    def rotate(self, headers: Mapping[str, str], body: bytes, info: RequestInfo) -> Rotated:
        """The successor's new registration, or a :class:`Refusal`; one decision line."""
        with one_decision(info, action=ACTION) as log:
            admitted = self.broker.admit(headers, log)
            if not admitted.registration.allow_rotation:
                raise RotationNotAllowed("the registration does not allow rotation")
            request = parse_rotate_request(body)
            successor = read_successor(request.certificate_pem)
            log.known["successor"] = successor.thumbprint
            verified = self._check_successor(admitted, successor, request.signature)
            revocation = self.broker.revocation.check(admitted.verified)
            successor_revocation = _successor_revocation(self.broker, verified)
            rotated = self._register(admitted, successor, successor_revocation, info)
            log.write("rotated", revocation=f"{revocation.value};successor "
                                            f"{successor_revocation.value}")
        return rotated

    def _check_successor(self, admitted: Admitted, successor: PresentedCertificate,
                         signature: bytes) -> VerifiedCertificate:
        current = admitted.presented
        # 2. Chain: the token path's validator, so the same anchors, EKU and key rules.
        try:
            verified = self.broker.validator.verify(successor)
        except CertificateNotTrusted as exc:
            # The chain check fails a certificate outside its dates too: say when that is why.
            _refuse_outside_dates(successor, admitted.now)
            raise _invalid(f"successor not trusted: {exc.detail}",
                           "The successor certificate does not chain to a trusted certificate "
                           "authority for client authentication.") from None
        # 3. The same issuer and subject: the holder renews its identity, never changes it.
        if successor.certificate.issuer != current.certificate.issuer:
            raise _invalid("successor issuer differs from the current certificate's",
                           "The successor certificate has another issuer than the current one.")
        if successor.certificate.subject != current.certificate.subject:
            raise _invalid("successor subject differs from the current certificate's",
                           "The successor certificate has another subject than the current one.")
        # 4. Current, and later: a successor that lapses first is no successor.
        _refuse_outside_dates(successor, admitted.now)
        if successor.certificate.not_valid_after_utc <= current.certificate.not_valid_after_utc:
            raise _invalid("successor does not end later than the current certificate",
                           "The successor certificate must end later than the current one.")
        # 5. Not registered already (the insert decides again, should two race).
        if self._registered(successor.thumbprint):
            raise _already_registered()
        # 6. The proof: whoever calls holds the successor's key as well as the current one's.
        message = proof_message(current.thumbprint, successor.thumbprint)
        if not proof_verifies(successor.certificate, signature, message):
            raise _invalid("proof signature does not verify with the successor's key",
                           "The signature is not the successor key's signature over "
                           f"{message.decode('ascii')}.")
        return verified

    def _registered(self, thumbprint: str) -> bool:
        try:
            return self.registrations.get(thumbprint) is not None
        except Refusal as refusal:
            if refusal.code == "certificate_not_registered":  # a malformed entity is taken
                return True
            raise

    def _register(self, admitted: Admitted, successor: PresentedCertificate,
                  revocation: RevocationOutcome, info: RequestInfo) -> Rotated:
        current = admitted.registration
        registration = Registration.with_grants(
            successor.certificate, current.grants, description=current.description,
            allow_rotation=current.allow_rotation, rotated_from=current.thumbprint)
        try:
            self.registrations.add(registration)
        except ResourceExistsError:
            raise _already_registered() from None
        except AzureError as exc:
            raise DependencyUnavailable(_insert_failed(exc)) from None
        record = RotationRecord(
            time=admitted.now, request_id=info.request_id, thumbprint=current.thumbprint,
            subject=admitted.presented.subject, successor=registration.thumbprint,
            successor_not_after=registration.not_after, client_address=info.client_address,
            revocation=revocation.value)
        try:
            self.audit.record(record)
        except DependencyUnavailable:
            # The insert stands (the role cannot delete): never a 201 without the record,
            # and the operator is told which registration has none.
            logger.error("certsas rotation: successor %s of %s was registered but its audit "
                         "record was not written: check it with `certsas show %s`, then keep "
                         "it or `certsas remove` it", registration.thumbprint,
                         current.thumbprint, registration.thumbprint)
            raise
        return Rotated(registration)


def _insert_failed(error: AzureError) -> str:
    """The decision line's reason; a 403 says which role is missing (docs/deploy.md, "Roles")."""
    if isinstance(error, HttpResponseError) and error.status_code == 403:
        return ("registry insert forbidden: the app's identity may not insert registrations "
                "(infra parameter allowHolderRotation)")
    return f"registry insert failed: {type(error).__name__}"


def _successor_revocation(broker: TokenBroker, verified: VerifiedCertificate
                          ) -> RevocationOutcome:
    """As for a token; but "revoked" and "unknown" are the successor's fault, so
    ``successor_invalid``; a source that failed stays ``revocation_unavailable`` (retry)."""
    try:
        return broker.revocation.check(verified)
    except (CertificateRevoked, RevocationStatusUnknown) as exc:
        what = "revoked" if isinstance(exc, CertificateRevoked) else "of unknown revocation status"
        refusal = _invalid(f"successor {what}: {exc.detail}",
                           f"The successor certificate is {what}.")
        refusal.revocation = exc.revocation
        raise refusal from None
    except RevocationUnavailable as exc:
        unavailable = RevocationUnavailable(
            f"successor: {exc.detail}",
            message="The revocation status of the successor certificate could not be checked.")
        unavailable.revocation = exc.revocation
        raise unavailable from None


def _refuse_outside_dates(successor: PresentedCertificate, now: datetime) -> None:
    try:
        check_dates(successor.certificate, now)
    except CertificateExpired as exc:
        raise _invalid(f"successor {exc.detail}",
                       "The successor certificate is outside its validity period.") from None


def _invalid(detail: str, message: str) -> SuccessorInvalid:
    return SuccessorInvalid(detail, message=message)


def _already_registered() -> SuccessorInvalid:
    return _invalid("successor already registered",
                    "The successor certificate is already registered.")
