"""validate_response against seeded mutants of a real signed answer: whatever the bytes,
the answer is a validated OcspAnswer or RevocationUnavailable, never another exception
(issue 11, item 4). The responder-level cases are tests/integration/test_ocsp_validation.py."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp

from certsas.devtools.ocsp_signing import ResponsePlan, issuer_hashes, sign
from certsas.errors import RevocationUnavailable
from certsas.ocsp.validation import validate_response
from tests.support.fuzz import mutate
from tests.support.ocsp_faults import resign_edited_tbs
from tests.support.pki import Pki

MUTANTS = 3000


def test_mutated_answers_are_answers_or_unavailable(pki: Pki) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    client = pki.issuing.issue("ocsp-fuzz")
    issuer = pki.issuing.certificate
    nonce = b"\x11" * 16
    request = (ocsp.OCSPRequestBuilder()
               .add_certificate(client.certificate, issuer, hashes.SHA1())  # noqa: S303
               .build())
    name_hash, key_hash = issuer_hashes(issuer, hashes.SHA1())  # noqa: S303
    plan = ResponsePlan(
        issuer_name_hash=name_hash, issuer_key_hash=key_hash,
        serial_number=client.certificate.serial_number, hash_algorithm=hashes.SHA1(),  # noqa: S303
        status=ocsp.OCSPCertStatus.GOOD, this_update=now - timedelta(minutes=1),
        next_update=now + timedelta(hours=1), revocation_time=None, nonce=nonce,
        signer=issuer, signer_key=pki.issuing.key, certificates=(),
    )
    genuine = sign(plan)
    assert validate_response(genuine, request, issuer, nonce, now).status \
        is ocsp.OCSPCertStatus.GOOD
    rng = random.Random(11)
    outcomes: Counter[str] = Counter()
    for index in range(MUTANTS):
        if index % 2:
            der = mutate(genuine, rng)
        else:
            der = resign_edited_tbs(genuine, lambda tbs: mutate(tbs, rng), pki.issuing.key)
        try:
            answer = validate_response(der, request, issuer, nonce, now)
        except RevocationUnavailable:
            outcomes["unavailable"] += 1
        else:
            outcomes[answer.status.name.lower()] += 1
    print(f"\nOCSP response mutants: {MUTANTS}, outcomes {dict(outcomes)}")
    assert outcomes["unavailable"] > MUTANTS // 2
