"""Is this OCSP response a valid answer to our request? Pure functions, RFC 6960 §3.2.

``cryptography`` parses OCSP responses but verifies nothing: a response with a
corrupted signature, or signed by some other client's certificate, parses as
SUCCESSFUL/GOOD. Every check here is ours; each failure is a
:class:`RevocationUnavailable` whose ``detail`` names the rule that failed.
Signatures are checked with ``cryptography``'s public-key ``verify``; no crypto here.

The bytes come from a peer: any exception while reading them (a hash or key algorithm
``cryptography`` does not know, a field that parses lazily and turns out malformed)
means "no valid answer", never a crash.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, OCSPExtensionOID

from certsas.clock import iso
from certsas.errors import RevocationUnavailable
from certsas.ocsp.der import single_response_has_critical_extension
from certsas.signatures import algorithm_name, is_accepted

# Responder and relying party clocks disagree a little; OpenSSL allows the same leeway.
CLOCK_SKEW = timedelta(minutes=5)
# An answer with no nextUpdate and no echoed nonce says nothing about when it stops being
# true; over plain HTTP an old one could be replayed, so it must have been made just now.
UNDATED_MAX_AGE = timedelta(minutes=10)


@dataclass(frozen=True)
class OcspAnswer:
    """What a validated response says about our certificate."""

    status: ocsp.OCSPCertStatus
    next_update: datetime | None
    revocation_time: datetime | None = None
    revocation_reason: x509.ReasonFlags | None = None


def key_hash(certificate: x509.Certificate) -> bytes:
    """SHA-1 of the subjectPublicKey bits: RFC 6960's byKey and the CertID's issuerKeyHash.

    That is RFC 5280's key identifier method 1, which ``cryptography`` computes.
    """
    return x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest


def validate_response(
    der: bytes,
    request: ocsp.OCSPRequest,
    issuer: x509.Certificate,
    nonce: bytes | None,
    now: datetime,
) -> OcspAnswer:
    """Accept ``der`` only if it is a signed, fresh, unambiguous answer to ``request``."""
    try:
        return _validate(der, request, issuer, nonce, now)
    except RevocationUnavailable:
        raise
    except ValueError as exc:  # a field that parsed lazily turned out malformed
        raise RevocationUnavailable(f"OCSP response is malformed: {exc}") from None
    except Exception as exc:  # UnsupportedAlgorithm and whatever else a peer's bytes cause
        raise RevocationUnavailable(
            f"OCSP response could not be read ({type(exc).__name__})") from None


def _validate(der: bytes, request: ocsp.OCSPRequest, issuer: x509.Certificate,
              nonce: bytes | None, now: datetime) -> OcspAnswer:
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError:
        raise RevocationUnavailable("OCSP response does not parse") from None
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise RevocationUnavailable(f"OCSP responder answered {response.response_status.name}")
    responder_certificate(response, issuer, now)
    check_critical_extensions(response)
    single = matching_single_response(response, request)
    check_freshness(single, now)
    if not check_nonce(response, nonce):
        check_undated_age(single, now)
    return OcspAnswer(
        status=single.certificate_status,
        next_update=single.next_update_utc,
        revocation_time=single.revocation_time_utc,
        revocation_reason=single.revocation_reason,
    )


def responder_certificate(
    response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime
) -> x509.Certificate:
    """The certificate whose key signed: the CA itself or a delegated responder it issued.

    Every candidate the ResponderID names is tried (the CA first, then ``certs`` in
    order), so a lookalike placed before the genuine signer in the unsigned ``certs``
    field cannot make a valid answer unusable.
    """
    failures: list[str] = []
    for candidate in (issuer, *response.certificates):
        if not _identifies(response, candidate):
            continue
        try:
            if candidate is not issuer:
                check_delegated_signer(candidate, issuer, now)
            verify_signature(response, candidate)
            return candidate
        except RevocationUnavailable as exc:
            failures.append(exc.detail)
        except Exception as exc:  # a carried certificate we cannot read is not the signer
            failures.append(f"OCSP signer candidate unreadable ({type(exc).__name__})")
    if failures:
        raise RevocationUnavailable("; ".join(dict.fromkeys(failures)))
    raise RevocationUnavailable(
        "OCSP responder ID names neither the issuing CA nor a certificate carried in the response"
    )


def check_critical_extensions(response: ocsp.OCSPResponse) -> None:
    """RFC 6960 §4.4: a critical extension we do not understand makes the response unusable.

    The nonce is the only response extension certsas understands; it understands no
    SingleResponse extension, so any critical one there refuses the response.
    """
    for extension in response.extensions:
        if extension.critical and extension.oid != OCSPExtensionOID.NONCE:
            raise RevocationUnavailable(
                f"OCSP response has an unrecognised critical extension {extension.oid.dotted_string}"
            )
    if single_response_has_critical_extension(response.tbs_response_bytes):
        raise RevocationUnavailable("OCSP SingleResponse has an unrecognised critical extension")


def _identifies(response: ocsp.OCSPResponse, certificate: x509.Certificate) -> bool:
    """Does the ResponderID (byName or byKey) name ``certificate``? No, if it cannot be read."""
    try:
        if response.responder_name is not None:
            return response.responder_name == certificate.subject
        expected = response.responder_key_hash
        return expected is not None and hmac.compare_digest(expected, key_hash(certificate))
    except (ValueError, UnsupportedAlgorithm):
        return False


def check_delegated_signer(
    signer: x509.Certificate, issuer: x509.Certificate, now: datetime
) -> None:
    """RFC 6960 §4.2.2.2: issued directly by the CA, for OCSP signing, valid now."""
    try:
        signer.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        raise RevocationUnavailable(
            "OCSP signer certificate is not issued by the certificate's issuing CA"
        ) from None
    try:
        eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise RevocationUnavailable("OCSP signer lacks id-kp-OCSPSigning (no EKU)") from None
    if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
        raise RevocationUnavailable("OCSP signer lacks id-kp-OCSPSigning")
    try:
        usage = signer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.digital_signature:
        raise RevocationUnavailable("OCSP signer's key usage does not allow digitalSignature")
    if not signer.not_valid_before_utc <= now <= signer.not_valid_after_utc:
        raise RevocationUnavailable("OCSP signer certificate is outside its validity period")


def verify_signature(response: ocsp.OCSPResponse, signer: x509.Certificate) -> None:
    """The signature over tbsResponseData verifies with the signer's public key."""
    key = signer.public_key()
    oid = response.signature_algorithm_oid
    if not is_accepted(key, oid):
        name = algorithm_name(oid)
        raise RevocationUnavailable(
            f"OCSP response signature algorithm {name} is not accepted for the signer's key"
        )
    try:
        algorithm = response.signature_hash_algorithm
        data, signature = response.tbs_response_bytes, response.signature
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            raise RevocationUnavailable("OCSP response signature algorithm has no hash")
    except (InvalidSignature, UnsupportedAlgorithm):
        raise RevocationUnavailable("OCSP response signature does not verify") from None


def matching_single_response(
    response: ocsp.OCSPResponse, request: ocsp.OCSPRequest
) -> ocsp.OCSPSingleResponse:
    """Exactly one SingleResponse with our CertID: hash algorithm, issuer hashes, serial."""
    singles = list(response.responses)
    ours = [single for single in singles if _same_cert_id(single, request)]
    if len(ours) == 1:
        return ours[0]
    if len(ours) > 1:
        raise RevocationUnavailable(
            f"OCSP response has {len(ours)} SingleResponses for the certificate (ambiguous)"
        )
    if any(single.serial_number == request.serial_number for single in singles):
        raise RevocationUnavailable(
            "OCSP SingleResponse has the certificate's serial but another issuer or hash "
            "algorithm (CertID mismatch)"
        )
    raise RevocationUnavailable("OCSP response has no SingleResponse for the certificate's serial")


def _same_cert_id(single: ocsp.OCSPSingleResponse, request: ocsp.OCSPRequest) -> bool:
    return (
        single.hash_algorithm.name == request.hash_algorithm.name
        and single.issuer_name_hash == request.issuer_name_hash
        and single.issuer_key_hash == request.issuer_key_hash
        and single.serial_number == request.serial_number
    )


def check_freshness(single: ocsp.OCSPSingleResponse, now: datetime) -> None:
    """thisUpdate not in the future, nextUpdate (when present) not past; both with skew."""
    this_update, next_update = single.this_update_utc, single.next_update_utc
    if this_update > now + CLOCK_SKEW:
        raise RevocationUnavailable(
            f"OCSP thisUpdate {iso(this_update)} is in the future"
        )
    if next_update is None:
        return
    if next_update < this_update:
        raise RevocationUnavailable("OCSP nextUpdate is before thisUpdate")
    if next_update < now - CLOCK_SKEW:
        raise RevocationUnavailable(
            f"OCSP answer is stale: nextUpdate {iso(next_update)} has passed"
        )


def check_nonce(response: ocsp.OCSPResponse, sent: bytes | None) -> bool:
    """An echoed nonce must be ours; an omitted one is fine (most CAs pre-sign answers).

    True when the response echoed our nonce, which proves it was made for this request.
    """
    try:
        echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return False
    if sent is None or not hmac.compare_digest(echoed, sent):
        raise RevocationUnavailable("OCSP nonce in the response does not match the request's")
    return True


def check_undated_age(single: ocsp.OCSPSingleResponse, now: datetime) -> None:
    """Without nextUpdate or our nonce, only a just-made answer is believed (no replays)."""
    if single.next_update_utc is None and single.this_update_utc < now - UNDATED_MAX_AGE:
        raise RevocationUnavailable(
            f"OCSP answer has no nextUpdate, no nonce, and a thisUpdate "
            f"{iso(single.this_update_utc)} older than "
            f"{int(UNDATED_MAX_AGE.total_seconds() // 60)} minutes"
        )
