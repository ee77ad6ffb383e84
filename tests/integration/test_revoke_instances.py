"""After ``revoke-tokens``, every instance signs with a new key within
REGISTRY_CACHE_SECONDS; before the epoch changes, none fetches one; a failed
management call changes nothing.

Three app instances run as separate processes (tests/support/epoch_instance.py) against
one Azurite table, each with the signer certsas.runtime builds from its settings (only the
delegation key source is a stand-in); the management API and Entra ID are the loopback
stand-in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.data.tables import TableServiceClient
from azure.identity import DefaultAzureCredential

from certsas.cli.errors import CliError
from certsas.cli.incident import Target, revoke
from certsas.cli.management import ManagementApi
from tests.support import ROOT
from tests.support.azurite import Azurite
from tests.support.management import ManagementStandIn
from tests.support.pki import Pki

SECONDS = 3  # REGISTRY_CACHE_SECONDS of the instances
INSTANCES = 3


@dataclass
class Instance:
    process: subprocess.Popen[str]
    lines: list[dict[str, Any]] = field(default_factory=list)

    def follow(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(json.loads(line))

    def fetches(self) -> int:
        return self.lines[-1]["fetches"] if self.lines else 0

    def first_with_key(self, index: int) -> dict[str, Any] | None:
        return next((line for line in self.lines if line["key"] == [index]), None)


def wait_until(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_every_instance_signs_with_a_new_key_within_the_cache_time(
        monkeypatch: pytest.MonkeyPatch, azurite: Azurite,
        fresh_tables: tuple[str, str], pki: Pki) -> None:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    registry, audit = (service.create_table(name) for name in fresh_tables)
    # Each instance's settings, as the app reads them (managed identity: user delegation SAS).
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STORAGE_ACCOUNT_NAME": "certsasprod01",
           "CERT_TABLE_NAME": fresh_tables[0], "REGISTRY_CACHE_SECONDS": str(SECONDS),
           "TRUSTED_CA_CERTS": pki.trust_bundle}
    env.pop("STORAGE_CONNECTION_STRING", None)
    instances = [Instance(subprocess.Popen(
        [sys.executable, "-m", "tests.support.epoch_instance", azurite.connection_string],
        stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT))
        for _ in range(INSTANCES)]
    try:
        for instance in instances:
            threading.Thread(target=instance.follow, daemon=True).start()
        wait_until(lambda: all(i.first_with_key(0) for i in instances), 60)

        with ManagementStandIn([500, 200]) as api:
            api.use(monkeypatch)
            management = ManagementApi(api.origin, DefaultAzureCredential())
            target = Target("00000000-1111-2222-3333-444444444444", "rg", "certsasprod01")
            with pytest.raises(CliError):
                revoke(management, registry, audit, target)
            # Two whole periods with steady traffic: no epoch, so no instance fetches a key.
            time.sleep(2 * SECONDS + 0.5)
            assert [i.fetches() for i in instances] == [1] * INSTANCES

            started = time.time()
            revoke(management, registry, audit, target)
            revoked = time.time()
            wait_until(lambda: all(i.first_with_key(1) for i in instances), 3 * SECONDS)

        firsts = [i.first_with_key(1) for i in instances]
        delays = [line["at"] - revoked for line in firsts if line is not None]
        print(f"\nrevoke-tokens took {revoked - started:.3f} s; first token signed with the new "
              f"key after {', '.join(f'{d:.2f}' for d in delays)} s "
              f"(REGISTRY_CACHE_SECONDS={SECONDS})")
        assert max(delays) < SECONDS
        for instance in instances:
            # Exactly one more key per instance, and after the change only the new key signs.
            assert instance.fetches() == 2
            first = instance.first_with_key(1)
            assert first is not None
            after = instance.lines[instance.lines.index(first):]
            assert all(line["key"] == [1] for line in after)
            assert all(line["scid_is_request_id"] for line in instance.lines)
    finally:
        for instance in instances:
            instance.process.terminate()
            instance.process.wait(10)
