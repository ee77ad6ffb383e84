"""The App Service front end, emulated for ``certsas serve --tls``.

TLS that *requires* a client certificate and checks only that the caller holds its
key (the handshake's CertificateVerify), as App Service with ``clientCertMode=Required``
does; the leaf is forwarded as base64 DER in the app's ``CLIENT_CERT_HEADER``,
overwriting any such header the caller sent. pyOpenSSL is used because Python's
``ssl`` cannot ask for a client certificate without also validating its issuer.

pyOpenSSL is imported in the functions that use it: it is a development dependency,
and the command line that imports this module (``certsas register`` and the rest) must
run where only the runtime dependencies are installed.
"""

from __future__ import annotations

import base64
import contextlib
import io
import socket
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from cryptography.hazmat.primitives import serialization

from certsas.devtools.host import (
    DEFAULT_CERT_HEADER,
    IO_TIMEOUT_SECONDS,
    AppHandler,
    AppServer,
    Header,
    LocalApp,
)


def tls_context(cert: Path, key: Path) -> Any:
    """A server context that demands a client certificate but, like App Service, not its issuer."""
    from OpenSSL import SSL

    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.use_certificate_chain_file(str(cert))
    context.use_privatekey_file(str(key))
    context.check_privatekey()
    # The handshake's CertificateVerify proves the caller holds the key; chain, dates and
    # revocation are the app's job, so the callback accepts any certificate.
    context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT,
                       lambda *_: True)
    # No resumption: every connection proves possession of the key afresh.
    context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    context.set_options(SSL.OP_NO_TICKET)
    return context


class _TlsReader(io.RawIOBase):
    """A readable file over a pyOpenSSL connection (it has no ``makefile``)."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        from OpenSSL import SSL

        try:
            return int(self._connection.recv_into(buffer))
        except SSL.ZeroReturnError:
            return 0
        except SSL.WantReadError:
            raise TimeoutError("client sent nothing") from None
        except SSL.SysCallError as exc:
            if exc.args and exc.args[0] == -1:  # the peer closed without close_notify
                return 0
            raise ConnectionError(str(exc)) from None


class _TlsWriter(io.BufferedIOBase):
    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._connection.sendall(bytes(data))
        return len(data)


class _FrontEndHandler(AppHandler):
    def setup(self) -> None:
        self.rfile = io.BufferedReader(_TlsReader(self.request))
        self.wfile = _TlsWriter(self.request)

    def forwarded_headers(self) -> list[Header]:
        header = self.server.app.cert_header
        leaf = self.request.get_peer_certificate(as_cryptography=True)
        der = leaf.public_bytes(serialization.Encoding.DER)
        return front_end_headers(self.headers.items(), header, der, self.client_address)


def front_end_headers(headers: Iterable[Header], cert_header: str, leaf_der: bytes,
                      client: tuple[str, int]) -> list[Header]:
    """The caller's headers as App Service forwards them: the certificate and address are ours."""
    ours = {cert_header.lower(), DEFAULT_CERT_HEADER.lower(), "x-forwarded-for",
            "x-forwarded-proto"}
    kept = [(name, value) for name, value in headers if name.lower() not in ours]
    return [
        *kept,
        (cert_header, base64.b64encode(leaf_der).decode("ascii")),
        # App Service puts "ip:port" here; the app records it in the audit table.
        ("X-Forwarded-For", f"{client[0]}:{client[1]}"),
        ("X-Forwarded-Proto", "https"),
    ]


class TlsServer(AppServer):
    scheme = "https"

    def __init__(self, address: tuple[str, int], app: LocalApp, context: Any, *,
                 log: TextIO | None = None) -> None:
        self.context = context
        super().__init__(address, app, _FrontEndHandler, log=log)

    def get_request(self) -> tuple[Any, Any]:
        from OpenSSL import SSL

        sock, address = self.socket.accept()
        # Kernel-level timeouts keep the socket blocking, which pyOpenSSL needs.
        timeval = struct.pack("ll", IO_TIMEOUT_SECONDS, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
        connection = SSL.Connection(self.context, sock)
        connection.set_accept_state()
        return connection, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        from OpenSSL import SSL

        # The handshake runs in the request's thread so a slow caller blocks only itself.
        try:
            request.do_handshake()
        except (SSL.Error, OSError) as exc:
            self.log(f"{client_address[0]} TLS handshake refused: {ssl_reason(exc)}")
            return
        super().finish_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        from OpenSSL import SSL

        # close_notify is a courtesy: a peer that went away first only needs closing.
        with contextlib.suppress(SSL.Error, OSError):
            request.shutdown()
        self.close_request(request)

    def close_request(self, request: Any) -> None:
        request.close()  # pyOpenSSL hands close() to the socket underneath


def ssl_reason(exc: BaseException) -> str:
    """OpenSSL's last reason ("key values mismatch"), not pyOpenSSL's list of tuples."""
    args = exc.args[0] if exc.args else None
    if isinstance(args, list) and args and isinstance(args[0], tuple):
        return str(args[0][-1])
    return str(exc) or type(exc).__name__


