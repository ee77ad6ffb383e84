"""Dependencies failing at the worst time, with real processes: certsas answers 503, then recovers.

Each fault is injected by stopping, pointing at, or stalling a real server on
loopback: an Azurite of the test's own, a dead port, a socket that never answers.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from certsas import runtime
from certsas.broker import TokenBroker
from certsas.config import Settings
from certsas.sas import UserDelegationSigner
from tests.support.azurite import Azurite, free_port
from tests.support.pki import Pki
from tests.support.stack import Stack, app_env, build_stack, forwarded


@pytest.fixture
def own_azurite(tmp_path: Path) -> Iterator[Azurite]:
    """An Azurite this test may stop and start without disturbing the others."""
    instance = Azurite(free_port(), free_port(), tmp_path)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


def prepare(stack: Stack, pki: Pki) -> None:
    """Tables, containers and the registration: Azurite in memory forgets them on restart."""
    for name in (stack.env["CERT_TABLE_NAME"], stack.env["AUDIT_TABLE_NAME"]):
        stack.tables.create_table_if_not_exists(name)
    if not stack.blobs.get_container_client("reports").exists():
        stack.blobs.create_container("reports")
    stack.register(pki.client)


def test_storage_down_mid_run_then_back_without_restarting_the_app(
        monkeypatch: pytest.MonkeyPatch, own_azurite: Azurite, pki: Pki,
        fresh_tables: tuple[str, str]) -> None:
    stack = build_stack(monkeypatch, app_env(own_azurite, pki.trust_bundle, fresh_tables),
                        own_azurite.connection_string)
    prepare(stack, pki)
    assert stack.token(pki.client).status == 200
    broker = runtime.get_broker()

    own_azurite.stop()
    for _ in range(3):
        answer = stack.token(pki.client)
        assert (answer.status, answer.error) == (503, "dependency_unavailable")

    own_azurite.start()
    prepare(stack, pki)
    answer = stack.token(pki.client)
    assert answer.status == 200, answer.body
    assert runtime.get_broker() is broker  # the same clients, reconnected


def test_table_up_but_blob_down_for_the_delegation_key_is_503(
        monkeypatch: pytest.MonkeyPatch, azurite: Azurite, pki: Pki,
        fresh_tables: tuple[str, str]) -> None:
    stack = build_stack(monkeypatch, app_env(azurite, pki.trust_bundle, fresh_tables),
                        azurite.connection_string)
    stack.register(pki.client)
    from azure.storage.blob import BlobServiceClient

    # The managed-identity signer, fetching its delegation key from a Blob endpoint
    # that refuses connections, while the Table registry answers normally.
    dead_blob = BlobServiceClient.from_connection_string(
        azurite.connection_string.replace(str(azurite.blob_port), str(free_port())),
        retry_total=0, connection_timeout=2)
    broker = runtime.build_broker(Settings.from_env(stack.env))
    signer = UserDelegationSigner("devstoreaccount1", azurite.blob_endpoint, dead_blob,
                                  max_ttl_minutes=60)
    monkeypatch.setattr(runtime, "_broker", _with(broker, signer=signer))
    answer = stack.token(pki.client)
    assert (answer.status, answer.error) == (503, "dependency_unavailable")
    assert stack.audit_records() == []


class Blackhole:
    """A TCP server that accepts connections and never answers: slow storage."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port: int = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.held.append(conn)
            except TimeoutError:
                continue
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2)
        for conn in self.held:
            conn.close()
        self.sock.close()


def test_slow_storage_gives_a_bounded_503(monkeypatch: pytest.MonkeyPatch, azurite: Azurite,
                                          pki: Pki, fresh_tables: tuple[str, str]) -> None:
    hole = Blackhole()
    try:
        slow = azurite.connection_string.replace(str(azurite.table_port), str(hole.port))
        env = app_env(azurite, pki.trust_bundle, fresh_tables, STORAGE_TIMEOUT_SECONDS="1")
        stack = build_stack(monkeypatch, env, azurite.connection_string)
        monkeypatch.setenv("STORAGE_CONNECTION_STRING", slow)
        runtime.reset_broker()
        started = time.monotonic()
        answer = stack.token(pki.client)
        elapsed = time.monotonic() - started
    finally:
        hole.close()
    assert (answer.status, answer.error) == (503, "dependency_unavailable")
    # One try and one retry of a 1 s read timeout, not the SDK's default of minutes.
    assert elapsed < 10, elapsed


def test_audit_table_lost_mid_run_stops_issuing(monkeypatch: pytest.MonkeyPatch, azurite: Azurite,
                                                pki: Pki, fresh_tables: tuple[str, str]) -> None:
    stack = build_stack(monkeypatch, app_env(azurite, pki.trust_bundle, fresh_tables),
                        azurite.connection_string)
    stack.register(pki.client)
    assert stack.token(pki.client).status == 200
    stack.tables.delete_table(stack.env["AUDIT_TABLE_NAME"])
    answer = stack.call(forwarded(pki.client))
    assert (answer.status, answer.error) == (503, "dependency_unavailable")
    assert "token" not in answer.body
    stack.tables.create_table(stack.env["AUDIT_TABLE_NAME"])
    assert stack.token(pki.client).status == 200
    assert len(stack.audit_records()) == 1


def _with(broker: TokenBroker, **changes: Any) -> TokenBroker:
    return replace(broker, **changes)
