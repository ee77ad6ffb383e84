"""A sample of the broker fuzz through the real function against Azurite (the big fuzz is
tests/unit/test_fuzz.py, on in-memory seams): every answer a SPEC status and code, never
a 500, and one decision line per call."""

from __future__ import annotations

import base64
import logging
from collections import Counter

import pytest

from tests.support.azurite import Azurite
from tests.support.fuzz import body_mutants, certificate_mutants, fixed_pki, header_mutants
from tests.support.memory import SPEC_CODES
from tests.support.stack import app_env, build_stack

CA, CLIENT = fixed_pki()
SAMPLE = 150


def test_a_fuzz_sample_through_the_function(
        monkeypatch: pytest.MonkeyPatch, azurite: Azurite, fresh_tables: tuple[str, str],
        caplog: pytest.LogCaptureFixture) -> None:
    env = app_env(azurite, CA.issued.pem.decode(), fresh_tables)
    stack = build_stack(monkeypatch, env, azurite.connection_string)
    stack.register(CLIENT, permissions="rl")
    header = base64.b64encode(CLIENT.der).decode()
    inputs = [({"X-ARR-ClientCert": base64.b64encode(m.der).decode()}, b"")
              for m in certificate_mutants(CLIENT.der, CA, SAMPLE, seed=7)]
    inputs += [({"X-ARR-ClientCert": value}, b"")
               for value in header_mutants(CLIENT.der, SAMPLE, seed=7)]
    inputs += [({"X-ARR-ClientCert": header}, body) for body in body_mutants(SAMPLE, seed=7)]
    statuses: Counter[str] = Counter()
    with caplog.at_level(logging.INFO, logger="certsas.audit"):
        for index, (headers, body) in enumerate(inputs):
            before = len(caplog.records)
            answer = stack.call(headers, body, invocation_id=f"fuzz-{index}")
            statuses[answer.error or "issued"] += 1
            assert answer.status != 500, (index, answer.body)
            assert answer.error is None or answer.error in SPEC_CODES, (index, answer.body)
            lines = [r for r in caplog.records[before:]
                     if r.getMessage().startswith("certsas decision")]
            assert len(lines) == 1, (index, [r.getMessage() for r in lines])
    print(f"\nfuzz through the function: {len(inputs)} calls, {dict(sorted(statuses.items()))}")
    # The sample reaches past the header: refusals from the chain and scope, and tokens.
    assert statuses["issued"] > 0 and statuses["certificate_not_trusted"] > 0
