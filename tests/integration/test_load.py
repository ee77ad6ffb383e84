"""Load: 1,000 token requests from 16 threads against one process and a shared Azurite.

Every request is answered correctly, every issued token has exactly one audit
record, and no record is duplicated or lost.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

import pytest

from certsas.devtools.pki import Issued
from tests.support.azurite import Azurite
from tests.support.pki import Pki
from tests.support.stack import Answer, app_env, build_stack, forwarded

REQUESTS = 1000
THREADS = 16


def test_a_thousand_requests_from_sixteen_threads(monkeypatch: pytest.MonkeyPatch,
                                                  azurite: Azurite, pki: Pki,
                                                  fresh_tables: tuple[str, str]) -> None:
    env = app_env(azurite, pki.trust_bundle, fresh_tables, REGISTRY_CACHE_SECONDS="30")
    stack = build_stack(monkeypatch, env, azurite.connection_string)
    registered = [pki.issuing.issue(f"load-{i}") for i in range(4)]
    for issued in registered:
        stack.register(issued, permissions="rl")
    unregistered = pki.issuing.issue("load-unregistered")

    def one(i: int) -> tuple[int, Issued, Answer]:
        issued = unregistered if i % 10 == 9 else registered[i % 4]
        body = {"blob": f"b{i}"} if i % 3 == 0 else {}
        return i, issued, stack.call(forwarded(issued), body, invocation_id=f"load-{i:04d}")

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(one, range(REQUESTS)))

    issued_signatures = []
    for i, issued, answer in results:
        if issued is unregistered:
            assert (answer.status, answer.error) == (403, "certificate_not_registered"), i
            continue
        assert answer.status == 200, (i, answer.body)
        assert answer.body["blob"] == (f"b{i}" if i % 3 == 0 else None)
        issued_signatures.append(parse_qs(answer.body["token"])["sig"][0])

    expected = REQUESTS - REQUESTS // 10
    assert len(issued_signatures) == expected
    records = stack.audit_records()
    assert len(records) == expected
    request_ids = Counter(r["RequestId"] for r in records)
    assert len(request_ids) == expected and max(request_ids.values()) == 1
    import hashlib

    assert {r["SignatureSha256"] for r in records} == {
        hashlib.sha256(s.encode()).hexdigest() for s in issued_signatures}
