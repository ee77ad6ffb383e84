"""A partner's long job: upload and list blobs with one ContainerClient for longer than a
token lives. Imports nothing but certsas.client and the standard library, so it also runs
as a script in a virtual environment holding only the client's dependencies:

    python tests/support/client_scenario.py URL CERT KEY CA STEPS STEP_SECONDS

(real time) prints one JSON object: the blobs written and the first and last tokens' SAS
URLs, which the caller uses to show that a token lifetime really passed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable

from certsas.client import CertSas

TTL_MINUTES = 1
REFRESH_WHEN_LEFT = 0.2


def run(sas: CertSas, steps: int, step_seconds: float, advance: Callable[[float], None]
        ) -> list[str]:
    """Each step uploads a blob and lists them all, then time moves ``step_seconds`` on."""
    container = sas.container_client(ttl_minutes=TTL_MINUTES)
    folder = f"scenario-{os.urandom(4).hex()}/"
    written: list[str] = []
    for step in range(steps):
        name = f"{folder}{step:03}.txt"
        container.upload_blob(name, f"step {step}".encode())
        written.append(name)
        listed = [blob.name for blob in container.list_blobs(name_starts_with=folder)]
        if listed != written:
            raise AssertionError(f"step {step}: listed {listed}, wrote {written}")
        advance(step_seconds)
    return written


def expected_fetches(steps: int, step_seconds: float, lifetime_seconds: float) -> int:
    """Token fetches that SPEC §6a's rule implies for :func:`run`: one at the start, and one
    at each step that finds less than a fifth of the lifetime left."""
    fetches, expires = 1, lifetime_seconds
    for step in range(steps):
        now = step * step_seconds
        if expires - now < lifetime_seconds * REFRESH_WHEN_LEFT:
            fetches, expires = fetches + 1, now + lifetime_seconds
    return fetches


def main(argv: list[str]) -> int:
    url, cert, key, ca, steps, step_seconds = argv
    with CertSas(url, cert=cert, key=key, ca=ca) as sas:
        first = sas.token(ttl_minutes=TTL_MINUTES)
        written = run(sas, int(steps), float(step_seconds), time.sleep)
        last = sas.token(ttl_minutes=TTL_MINUTES)
    print(json.dumps({"written": written, "first_url": first.url, "last_url": last.url}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
