"""The one way certsas fetches a URL taken from a certificate (OCSP, CRL): bounded in every way.

A responder named in a certificate is not ours, so the fetch assumes nothing about it:

- **a wall-clock deadline**, enforced where the bytes are read: every ``recv`` is given
  only the time that remains, so headers, a chunk-size line or a body dripped one byte
  a second end at the deadline (a per-read timeout, as urllib3 has, would not);
- **no redirect** is followed (a 3xx is a failure);
- **a size cap** enforced while reading: the read stops at the cap, nothing is buffered first;
- **blocked networks**: the host is resolved once, every address is checked against
  ``REVOCATION_BLOCKED_NETWORKS`` and the connection goes to the address that was checked
  (no second lookup a DNS answer could change); the operator's override URLs are exempt.
  An unspecified address (``0.0.0.0``, ``0``, ``::``) reaches this machine, so it counts as
  loopback whenever loopback is blocked;
- **a cap on fetches in flight**, process-wide: a fetch that cannot get a slot within its
  budget fails, so a slow responder cannot hold every worker thread.

HTTP/1.1 is parsed by the standard library's ``http.client.HTTPResponse`` over a reader
that enforces the deadline; one connection per fetch (``Connection: close``): fetches are
rare, because their answers are cached.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import cast
from urllib.parse import quote, urlsplit, urlunsplit

from certsas.config import RevocationSettings
from certsas.envvalues import Network

# Enough for OCSP and CRL work of several certificates at once, and fewer than the worker
# threads of a Functions instance (PYTHON_THREADPOOL_THREAD_COUNT), so some always stay free.
MAX_FETCHES_IN_FLIGHT = 4
READ_CHUNK = 64 * 1024
# Connecting to an unspecified address reaches this machine (Linux, Windows): loopback.
_LOOPBACK = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
_PRINTABLE = "".join(chr(code) for code in range(0x21, 0x7F))


class FetchError(Exception):
    """No usable reply: the reason, safe to log (never a body, never a header value)."""


@dataclass(frozen=True)
class Reply:
    """A 200 reply: its media type (lowercase, no parameters) and its whole body."""

    content_type: str
    body: bytes


class FetchSlots:
    """The process-wide cap on fetches in flight (a semaphore that can say how full it is)."""

    def __init__(self, size: int = MAX_FETCHES_IN_FLIGHT) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        self._free = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def acquire(self, deadline: float) -> bool:
        if not self._free.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return False
        with self._lock:
            self._in_flight += 1
        return True

    def release(self) -> None:
        with self._lock:
            self._in_flight -= 1
        self._free.release()


SHARED_SLOTS = FetchSlots()
# getaddrinfo cannot be interrupted; a lookup runs here so the caller can stop waiting.
_resolver = ThreadPoolExecutor(max_workers=MAX_FETCHES_IN_FLIGHT, thread_name_prefix="netfetch-dns")
_tls_context: ssl.SSLContext | None = None


class NetFetcher:
    """Fetches URLs under the rules above; one per process is enough (it holds no connection)."""

    def __init__(
        self, blocked_networks: Sequence[Network] | None = None, slots: FetchSlots = SHARED_SLOTS
    ) -> None:
        # Unset means SPEC §3's default, never "nothing blocked".
        self.blocked_networks = tuple(RevocationSettings().blocked_networks
                                      if blocked_networks is None else blocked_networks)
        self.slots = slots

    def get(self, url: str, *, timeout: float, max_bytes: int, from_certificate: bool,
            accept: str = "*/*") -> Reply:
        return self.fetch("GET", url, None, timeout=timeout, max_bytes=max_bytes,
                          from_certificate=from_certificate, accept=accept)

    def post(self, url: str, body: bytes, content_type: str, *, timeout: float, max_bytes: int,
             from_certificate: bool, accept: str = "*/*") -> Reply:
        return self.fetch("POST", url, (content_type, body), timeout=timeout, max_bytes=max_bytes,
                          from_certificate=from_certificate, accept=accept)

    def fetch(self, method: str, url: str, content: tuple[str, bytes] | None, *, timeout: float,
              max_bytes: int, from_certificate: bool, accept: str) -> Reply:
        """The 200 reply to one request, all of it within ``timeout`` seconds, or FetchError."""
        deadline = time.monotonic() + timeout
        target = _Target.parse(url)
        if not self.slots.acquire(deadline):
            raise FetchError(f"no free fetch slot within {timeout:.2f}s "
                             f"({self.slots.size} fetches already in flight)")
        try:
            addresses = _resolve(target, deadline)
            if from_certificate:
                self._refuse_blocked(target, addresses)
            with _connect(target, addresses, deadline) as sock:
                sock.sendall(target.request(method, content, accept))
                return _read_reply(sock, deadline, max_bytes, timeout)
        except TimeoutError:
            raise FetchError(f"no answer within {timeout:.2f}s") from None
        except ssl.SSLError as exc:
            raise FetchError(f"TLS failed ({exc.reason or type(exc).__name__})") from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise FetchError(f"unreachable or not HTTP ({type(exc).__name__})") from None
        finally:
            self.slots.release()

    def _refuse_blocked(self, target: _Target, addresses: list[_Address]) -> None:
        for _family, address in addresses:
            ip = ipaddress.ip_address(address[0])
            mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
            seen = [ip] if mapped is None else [ip, mapped]
            if any(each.is_unspecified for each in seen):
                seen += _LOOPBACK
            for network in self.blocked_networks:
                if any(each in network for each in seen):
                    raise FetchError(f"host {target.host} resolves into a blocked network "
                                     f"({network}, REVOCATION_BLOCKED_NETWORKS); not contacted")


_Address = tuple[int, tuple[str, int]]  # (family, (ip, port))


def redact_url(url: str) -> str:
    """``url`` as it may appear in a log line or an error (SPEC §2a): no user or password, no
    query string (a SAS ``sig=`` lives there), no fragment, and nothing but printable ASCII
    (a URL from a certificate is attacker-chosen text: no line breaks in a log)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        return "<a URL that does not parse>"
    host = parts.netloc.rpartition("@")[2]
    shown = urlunsplit((parts.scheme, host, parts.path, "", ""))
    shown = quote(shown, safe=_PRINTABLE)
    return shown + ("?<query hidden>" if parts.query else "")


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str) -> _Target:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise FetchError("URL does not parse") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise FetchError("URL is not http:// or https:// with a host")
        if parts.username is not None or parts.password is not None:
            raise FetchError("URL carries credentials; not used")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # A URL from a certificate is attacker-chosen text: nothing that could split a header.
        if not all(0x21 <= ord(ch) < 0x7F for ch in path + parts.hostname):
            raise FetchError("URL holds characters that cannot go into a request line")
        default = 443 if scheme == "https" else 80
        return cls(scheme, parts.hostname, port or default, path)

    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def request(self, method: str, content: tuple[str, bytes] | None, accept: str) -> bytes:
        lines = [f"{method} {self.path} HTTP/1.1", f"Host: {self.host_header()}",
                 "User-Agent: certsas", f"Accept: {accept}", "Accept-Encoding: identity",
                 "Connection: close"]
        body = b""
        if content is not None:
            content_type, body = content
            lines += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    return remaining


def _resolve(target: _Target, deadline: float) -> list[_Address]:
    """Every address of the host, looked up once (an IP literal needs no lookup)."""
    try:
        ip = ipaddress.ip_address(target.host)
    except ValueError:
        pass
    else:
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        return [(family, (str(ip), target.port))]
    lookup = _resolver.submit(socket.getaddrinfo, target.host, target.port,
                              type=socket.SOCK_STREAM)
    try:
        infos = lookup.result(timeout=_remaining(deadline))
    except FutureTimeout:
        raise TimeoutError from None
    except socket.gaierror:
        raise FetchError(f"host {target.host} does not resolve") from None
    found = [(int(family), (str(addr[0]), int(addr[1]))) for family, _, _, _, addr in infos]
    if not found:
        raise FetchError(f"host {target.host} does not resolve")
    return found


def _connect(target: _Target, addresses: list[_Address], deadline: float) -> socket.socket:
    """A connection to the first address that answers; TLS (SNI, hostname check) for https."""
    error: OSError = ConnectionError("no address")
    for family, address in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(_remaining(deadline))
            sock.connect(address)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if target.scheme == "https":
                # CPython bounds the whole handshake by the socket timeout (one deadline).
                sock.settimeout(_remaining(deadline))
                return _tls().wrap_socket(sock, server_hostname=target.host)
            return sock
        except TimeoutError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            error = exc
    raise error


def _tls() -> ssl.SSLContext:
    global _tls_context
    if _tls_context is None:
        _tls_context = ssl.create_default_context()
    return _tls_context


class _DeadlineReader(io.RawIOBase):
    """Reads from the socket with the socket timeout re-armed to what remains, every time."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        self._sock.settimeout(_remaining(self._deadline))
        return self._sock.recv_into(buffer)


class _Stream:
    """What ``HTTPResponse`` wants of a socket: ``makefile``, here over the deadline reader."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._reader = _DeadlineReader(sock, deadline)

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(self._reader)


def _read_reply(sock: socket.socket, deadline: float, max_bytes: int, timeout: float) -> Reply:
    response = http.client.HTTPResponse(cast(socket.socket, _Stream(sock, deadline)))
    response.begin()
    if 300 <= response.status < 400:
        raise FetchError(f"HTTP {response.status} redirect; redirects are not followed")
    if response.status != 200:
        raise FetchError(f"HTTP {response.status}")
    declared = response.getheader("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"response larger than {max_bytes} bytes (Content-Length)")
    chunks: list[bytes] = []
    size = 0
    while True:
        # One byte past the cap is enough to know it is too big.
        chunk = response.read(min(READ_CHUNK, max_bytes + 1 - size))
        if not chunk:
            break
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(f"response larger than {max_bytes} bytes")
        chunks.append(chunk)
    content_type = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
    return Reply(content_type, b"".join(chunks))
