"""The whole broker against seeded mutants: every input ends in a SPEC answer and one decision.

In-memory seams (registry, revocation, audit) and the real header reader, chain
validator, scope rules and SAS signer, as in test_broker.py; a smaller sample runs
through the real function against Azurite in tests/integration/test_fuzz_stack.py.
The counts are printed (``pytest -s``) for the issue's closing note.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Callable, Iterable

from cryptography import x509

from certsas.broker import RequestInfo, TokenBroker
from certsas.errors import Refusal
from certsas.registration import Registration
from certsas.rotation import Rotator
from certsas.sas import AccountKeySigner
from certsas.verification import ChainValidator
from tests.support.fuzz import (
    body_mutants,
    certificate_mutants,
    fixed_pki,
    fixed_successor,
    header_mutants,
    parses,
    rotate_body,
    rotate_body_mutants,
)
from tests.support.memory import (
    SPEC_CODES,
    DecisionLines,
    MemoryAudit,
    MemoryRegistrations,
    MemoryRegistry,
    MemoryRotationAudit,
    RecordingRevocation,
)

CERT_MUTANTS = 10_000
HEADER_MUTANTS = 2000
BODY_MUTANTS = 2000
ROTATE_BODY_MUTANTS = 2000
SUCCESSOR_MUTANTS = 2000
SEED = 11


Call = Callable[[dict[str, str], bytes, RequestInfo], object]


def run(broker: TokenBroker | Call, inputs: Iterable[tuple[dict[str, str], bytes]],
        decisions: DecisionLines) -> tuple[Counter[str], list[str]]:
    """Outcomes by code ("issued" for a token or a rotation), and what was not a SPEC answer."""
    call = broker.issue if isinstance(broker, TokenBroker) else broker
    outcomes: Counter[str] = Counter()
    problems: list[str] = []
    for index, (headers, body) in enumerate(inputs):
        before = len(decisions.decisions)
        try:
            call(headers, body, RequestInfo(f"fuzz-{index}"))
            outcomes["issued"] += 1
        except Refusal as refusal:
            outcomes[refusal.code] += 1
            if refusal.code not in SPEC_CODES:
                problems.append(f"#{index}: code {refusal.code}")
        except Exception as exc:  # the point of the fuzz: count what escapes
            outcomes["unhandled"] += 1
            problems.append(f"#{index}: {type(exc).__name__}")
        if len(decisions.decisions) - before != 1:
            problems.append(f"#{index}: {len(decisions.decisions) - before} decision lines")
    return outcomes, problems


CA, CLIENT = fixed_pki()


def registered(registry: MemoryRegistry | None = None) -> tuple[TokenBroker, MemoryRegistry]:
    """The broker with the fuzz CA as trust anchor and the fuzz client registered."""
    registry = registry or MemoryRegistry()
    broker = TokenBroker(
        header_name="X-ARR-ClientCert",
        validator=ChainValidator((CA.certificate,)),
        registry=registry,
        revocation=RecordingRevocation(),
        signer=AccountKeySigner("acct", "a2V5", "https://acct.blob.core.windows.net"),
        audit=MemoryAudit(),
        default_ttl_minutes=15,
        max_ttl_minutes=60,
    )
    registration = Registration.for_certificate(CLIENT.certificate, container="reports",
                                                permissions="rl", max_ttl_minutes=30,
                                                allow_rotation=True)
    registry.entries[registration.thumbprint] = registration
    return broker, registry


def registrable(certificate: x509.Certificate) -> Registration | None:
    """The mutant's registration, or None where the CLI would not make one."""
    try:
        return Registration.for_certificate(certificate, container="reports")
    except Exception:  # the CLI's business, not the broker's: skip what it cannot register
        return None


def report(name: str, outcomes: Counter[str], problems: list[str]) -> None:
    total = sum(outcomes.values())
    print(f"\nfuzz {name}: {total} inputs, unhandled {outcomes['unhandled']}, "
          f"outcomes {dict(sorted(outcomes.items()))}")
    assert not problems, problems[:20]


def test_certificate_mutants(decisions: DecisionLines) -> None:
    """10,000 mutants of the registered DER; half re-signed by the CA, half of those
    registered too, so they reach the registry match, scope, revocation and signing."""
    broker, registry = registered()
    inputs = []
    resigned = 0
    for index, mutant in enumerate(certificate_mutants(CLIENT.der, CA,
                                                       CERT_MUTANTS, SEED)):
        resigned += mutant.resigned
        certificate = parses(mutant.der) if mutant.resigned and index % 4 == 0 else None
        registration = registrable(certificate) if certificate is not None else None
        if registration is not None:
            registry.entries[registration.thumbprint] = registration
        inputs.append(({"X-ARR-ClientCert": base64.b64encode(mutant.der).decode()}, b""))
    outcomes, problems = run(broker, inputs, decisions)
    report("certificate mutants", outcomes, problems)
    assert sum(outcomes.values()) == CERT_MUTANTS and resigned == CERT_MUTANTS // 2
    # The re-signed half gets past the signature: some reach the registry, some a token.
    assert outcomes["certificate_not_registered"] > 0 and outcomes["issued"] > 0
    assert outcomes["client_certificate_malformed"] > 0 and outcomes["certificate_not_trusted"] > 0


def test_header_mutants(decisions: DecisionLines) -> None:
    broker, _ = registered()
    inputs = [({"X-ARR-ClientCert": value}, b"")
              for value in header_mutants(CLIENT.der, HEADER_MUTANTS, SEED)]
    outcomes, problems = run(broker, inputs, decisions)
    report("header mutants", outcomes, problems)
    assert outcomes["client_certificate_malformed"] > 0


def test_body_mutants(decisions: DecisionLines) -> None:
    broker, _ = registered()
    header = base64.b64encode(CLIENT.der).decode()
    inputs = [({"X-ARR-ClientCert": header}, body) for body in body_mutants(BODY_MUTANTS, SEED)]
    outcomes, problems = run(broker, inputs, decisions)
    report("body mutants", outcomes, problems)
    assert {"issued", "invalid_request", "scope_not_allowed"} <= set(outcomes)


# --- /api/rotate (SPEC §4a) -----------------------------------------------------------

SUCCESSOR = fixed_successor(CA)
CLIENT_HEADER = {"X-ARR-ClientCert": base64.b64encode(CLIENT.der).decode()}


def rotator() -> Rotator:
    """The fuzz client registered with rotation allowed; a registry rotation can write."""
    broker, registry = registered(MemoryRegistrations())
    assert isinstance(registry, MemoryRegistrations)
    return Rotator(broker, registry, MemoryRotationAudit())


def test_rotate_body_mutants(decisions: DecisionLines) -> None:
    """2,000 bodies: bytes, wrong fields and values, the valid body with a character
    replaced, its PEM cut or spliced: each an answer of SPEC §1 and one decision line."""
    inputs = [(CLIENT_HEADER, body)
              for body in rotate_body_mutants(CLIENT.der, SUCCESSOR, ROTATE_BODY_MUTANTS, SEED)]
    outcomes, problems = run(rotator().rotate, inputs, decisions)
    report("rotate body mutants", outcomes, problems)
    assert sum(outcomes.values()) == ROTATE_BODY_MUTANTS
    assert {"invalid_request", "successor_invalid", "issued"} <= set(outcomes)


def test_successor_mutants(decisions: DecisionLines) -> None:
    """2,000 mutants of the successor, half re-signed by the CA, each with a proof over its
    own thumbprint: they reach the chain, the subject and date checks, the proof, the write."""
    inputs = [(CLIENT_HEADER, rotate_body(CLIENT.der, mutant.der, SUCCESSOR.key))  # type: ignore[arg-type]
              for mutant in certificate_mutants(SUCCESSOR.der, CA, SUCCESSOR_MUTANTS, SEED)]
    outcomes, problems = run(rotator().rotate, inputs, decisions)
    report("successor mutants", outcomes, problems)
    assert sum(outcomes.values()) == SUCCESSOR_MUTANTS
    assert outcomes["successor_invalid"] > 0 and outcomes["issued"] > 0
