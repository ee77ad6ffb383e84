"""Two small concurrency tools: a bounded expiring cache and single-flight.

Both are generic; their users decide what is cached and for how long: the chain
validator (verified chains), the registry (reads) and OCSP (valid answers, until
nextUpdate, capped).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ExpiringLru(Generic[K, V]):
    """A thread-safe LRU of at most ``max_entries``, each entry valid until its own deadline."""

    def __init__(self, max_entries: int = 4096) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._entries: OrderedDict[K, tuple[V, datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, now: datetime) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            value, until = entry
            if now >= until:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V, until: datetime) -> None:
        with self._lock:
            self._entries[key] = (value, until)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


class FlightAbandoned(Exception):
    """A waiter gave up on a concurrent call (it ran past ``wait_seconds``) or it crashed."""


@dataclass
class _Flight(Generic[V]):
    done: threading.Event = field(default_factory=threading.Event)
    value: V | None = None
    failed: bool = False


class SingleFlight(Generic[K, V]):
    """Concurrent calls for one key run ``work`` once; the others wait and share its value.

    ``work`` should return failures as values rather than raise, so that every
    waiter gets the same verdict. If ``work`` raises anyway, the leader sees the
    exception and the waiters :class:`FlightAbandoned`. Nothing is remembered once a
    flight lands: the next call for the key starts a new one.
    """

    def __init__(self) -> None:
        self._flights: dict[K, _Flight[V]] = {}
        self._lock = threading.Lock()

    def run(self, key: K, work: Callable[[], V], wait_seconds: float) -> V:
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            return self._wait(flight, wait_seconds)
        try:
            flight.value = work()
        except BaseException:
            flight.failed = True
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()
        return flight.value

    @staticmethod
    def _wait(flight: _Flight[V], wait_seconds: float) -> V:
        if not flight.done.wait(wait_seconds):
            raise FlightAbandoned("the concurrent call did not finish in time")
        if flight.failed or flight.value is None:
            raise FlightAbandoned("the concurrent call failed unexpectedly")
        return flight.value

