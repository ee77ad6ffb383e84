"""The log hygiene plugin finds what it is there to find."""

from __future__ import annotations

import base64

from tests.support.loghygiene import find_leaks
from tests.support.pki import Pki


def test_each_kind_of_secret_is_found(pki: Pki) -> None:
    lines = [
        "issued url=https://a.blob.core.windows.net/c?sv=2025-01-05&se=2026-11-23T10%3A15%3A00Z&sp=rl&sig=abcdEFGH1234%2Bxyz%3D",
        "conn DefaultEndpointsProtocol=http;AccountName=a;AccountKey=c2VjcmV0LWtleS1oZXJl;",
        pki.client.pem.decode(),
        base64.b64encode(pki.client.der).decode(),
        pki.client.key_pem.decode(),
    ]
    kinds = {kind for kind, _ in find_leaks(lines)}
    assert {"SAS signature", "account key", "PEM block", "base64 DER certificate"} <= kinds
    assert len({excerpt for _, excerpt in find_leaks(lines)}) >= len(lines)


def test_decision_lines_are_clean() -> None:
    line = ('certsas.audit INFO certsas decision {"container": "reports", "expires_on": '
            '"2026-11-23T10:15:00Z", "outcome": "issued", "thumbprint": "' + "A" * 64 + '"}')
    assert find_leaks([line, "sig=REDACTED"]) == []
