"""certsas's own OCSP responder, for the local demo and the tests. Loopback only.

    python -m certsas.devtools.ocsp_responder --ca issuing-ca.pem --ca-key issuing-ca.key \\
        [--signer ocsp-signer.pem --signer-key ocsp-signer.key] \\
        [--revoked revoked-client.pem ...] [--good client.pem ...] [--port N]

Every certificate of the CA is "good" unless revoked; with ``--good`` (or
``known=``) only those serials are, and any other serial is "unknown". Answers
echo the request's nonce. POST and RFC 6960 A.1 GET are served.

For tests a :class:`Fault` may change what is signed (:meth:`Fault.plan`) or what
is sent (:meth:`Fault.reply`); the standard library server is enough for both.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import signal
import sys
import threading
import urllib.parse
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509 import ocsp

from certsas.clock import Clock, system_clock
from certsas.devtools.loopback import LoopbackService
from certsas.devtools.ocsp_signing import (
    Fault,
    Reply,
    ResponsePlan,
    SignerKey,
    issuer_hashes,
    sign,
    unsuccessful,
)

MAX_REQUEST_BYTES = 16 * 1024


class OcspResponder(LoopbackService):
    """An OCSP responder for one CA on ``127.0.0.1``; settable attributes apply to the next request.

    ``signer``/``signer_key`` default to the CA itself; a delegated signer's
    certificate is carried in every response.
    """

    def __init__(
        self,
        *,
        issuer: x509.Certificate,
        issuer_key: SignerKey,
        signer: x509.Certificate | None = None,
        signer_key: SignerKey | None = None,
        revoked: Iterable[int] = (),
        known: Iterable[int] | None = None,
        next_update_seconds: int | None = 300,
        port: int = 0,
        clock: Clock = system_clock,
        fault: Fault | None = None,
    ) -> None:
        self.issuer = issuer
        self.signer = signer or issuer
        self.signer_key = signer_key or issuer_key
        revoked_at = clock() - timedelta(hours=1)
        self.revoked: dict[int, datetime] = dict.fromkeys(revoked, revoked_at)
        self.known: set[int] | None = set(known) if known is not None else None
        self.next_update_seconds = next_update_seconds
        self.clock = clock
        self.fault = fault or Fault()
        super().__init__(port)

    thread_name = "ocsp-responder"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    # --- answering -------------------------------------------------------------------

    def revoke(self, serial: int, at: datetime | None = None) -> None:
        self.revoked[serial] = at or self.clock() - timedelta(hours=1)

    def answer(self, request_der: bytes) -> Reply:
        """The reply to one DER request, after the fault hooks."""
        self.count_request()
        fault = self.fault
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            plan = self._plan(request)
        except ValueError:  # unparseable, or a CertID with a hash we cannot compute
            return fault.reply(Reply(unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)), None)
        if plan is None:
            return fault.reply(Reply(unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)), None)
        plan = fault.plan(plan)
        return fault.reply(Reply(sign(plan)), plan)

    def _plan(self, request: ocsp.OCSPRequest) -> ResponsePlan | None:
        """What to say about the requested CertID; None when it is not our CA's."""
        algorithm = request.hash_algorithm
        if (request.issuer_name_hash, request.issuer_key_hash) != issuer_hashes(
            self.issuer, algorithm
        ):
            return None
        serial = request.serial_number
        revoked_at = self.revoked.get(serial)
        if revoked_at is not None:
            status = ocsp.OCSPCertStatus.REVOKED
        elif self.known is not None and serial not in self.known:
            status = ocsp.OCSPCertStatus.UNKNOWN
        else:
            status = ocsp.OCSPCertStatus.GOOD
        now = self.clock()
        nonce: bytes | None
        try:
            nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            nonce = None
        delegated = self.signer != self.issuer
        return ResponsePlan(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=serial,
            hash_algorithm=algorithm,
            status=status,
            this_update=now,
            next_update=(now + timedelta(seconds=self.next_update_seconds)
                         if self.next_update_seconds is not None else None),
            revocation_time=revoked_at,
            nonce=nonce,
            signer=self.signer,
            signer_key=self.signer_key,
            certificates=(self.signer,) if delegated else (),
        )

    def wait(self, seconds: float) -> None:
        """Sleep for a fault's delay, but not past :meth:`stop`."""
        self.pause(seconds)


def _handler_for(responder: OcspResponder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body are two writes; with Nagle on, the body waits ~40 ms for an ACK.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_REQUEST_BYTES:
                self._send(Reply(b"", status=400, content_type="text/plain"))
                return
            self._send(self._answer(self.rfile.read(length)))

        def do_GET(self) -> None:
            # RFC 6960 A.1: GET {url}/{url-encoding of base-64 encoding of the DER request}
            encoded = urllib.parse.unquote(self.path.rsplit("/", 1)[-1])
            try:
                der = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                self._send(Reply(b"", status=400, content_type="text/plain"))
                return
            self._send(self._answer(der))

        def _answer(self, request_der: bytes) -> Reply:
            try:
                return responder.answer(request_der)
            except Exception as exc:  # a bug or a misconfigured signer: say so, keep serving
                print(f"OCSP responder error: {exc}", file=sys.stderr)
                return Reply(b"", status=500, content_type="text/plain")

        def _send(self, reply: Reply) -> None:
            if reply.delay_seconds:
                responder.wait(reply.delay_seconds)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:
                pass  # the client gave up (a timeout test); nothing to tell it

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: tests and the demo print what matters

    return Handler


# --- command line ---------------------------------------------------------------------


def _load_key(path: Path) -> SignerKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
                      | ed25519.Ed25519PrivateKey):
        raise ValueError(f"{path}: unsupported key type {type(key).__name__}")
    return key


def _serials(paths: Sequence[Path]) -> list[int]:
    return [x509.load_pem_x509_certificate(path.read_bytes()).serial_number for path in paths]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m certsas.devtools.ocsp_responder",
                                     description="A loopback OCSP responder for one CA.")
    parser.add_argument("--ca", type=Path, required=True, help="issuing CA certificate (PEM)")
    parser.add_argument("--ca-key", type=Path, required=True, help="issuing CA key (PEM)")
    parser.add_argument("--signer", type=Path, help="delegated OCSP signer certificate (PEM)")
    parser.add_argument("--signer-key", type=Path, help="delegated OCSP signer key (PEM)")
    parser.add_argument("--revoked", type=Path, nargs="+", action="extend", default=[],
                        help="certificates to report revoked")
    parser.add_argument("--good", type=Path, nargs="+", action="extend", default=None,
                        help="only these (and --revoked) are known; other serials are unknown")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any)")
    parser.add_argument("--next-update-minutes", type=int, default=5,
                        help="nextUpdate of each answer, minutes after thisUpdate (default 5)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if (args.signer is None) != (args.signer_key is None):
        print("error: --signer and --signer-key go together", file=sys.stderr)
        return 2
    try:
        issuer = x509.load_pem_x509_certificate(args.ca.read_bytes())
        signer = x509.load_pem_x509_certificate(args.signer.read_bytes()) if args.signer else None
        responder = OcspResponder(
            issuer=issuer,
            issuer_key=_load_key(args.ca_key),
            signer=signer,
            signer_key=_load_key(args.signer_key) if args.signer_key else None,
            revoked=_serials(args.revoked),
            known=_serials(args.good) if args.good is not None else None,
            next_update_seconds=args.next_update_minutes * 60,
            port=args.port,
        )
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        responder.start()
    except OSError as exc:
        print(f"error: cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 1
    with responder:
        print(f"OCSP responder for {issuer.subject.rfc4514_string()} listening on {responder.url}",
              flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
