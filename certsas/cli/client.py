"""``certsas token``: the client side, getting a token over mutual TLS.

Exit codes: 0 a token was issued, 1 a local problem (files, network, TLS), 2 bad
arguments, 3 the service refused (its error code is printed).
"""

from __future__ import annotations

import json
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)

from certsas.cli.errors import CliError

EXIT_REFUSED = 3


@dataclass(frozen=True)
class TokenCall:
    url: str
    cert: Path
    key: Path
    ca: Path | None = None
    container: str | None = None
    blob: str | None = None
    permissions: str | None = None
    ttl_minutes: int | None = None
    timeout_seconds: float = 15.0

    def body(self) -> dict[str, Any]:
        fields = {"container": self.container, "blob": self.blob,
                  "permissions": self.permissions, "ttl_minutes": self.ttl_minutes}
        return {name: value for name, value in fields.items() if value is not None}


@dataclass(frozen=True)
class Answer:
    status: int
    payload: dict[str, Any]

    @property
    def refusal(self) -> str:
        code = self.payload.get("error", "refused")
        return f"{self.status} {code}: {self.payload.get('message', '')}".rstrip(": ")


def check_files(request: TokenCall) -> None:
    """Fail with one line on a file that is missing or not what it claims to be."""
    for path, what in ((request.cert, "certificate"), (request.key, "key"),
                       (request.ca, "CA bundle")):
        if path is None:
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read {what} {path}: {exc.strerror}") from None
        if what == "key":
            _check_key(path, data, request.cert)
        elif not _holds_certificates(data):
            raise CliError(f"{path} is not a PEM certificate")


def _holds_certificates(data: bytes) -> bool:
    try:
        return bool(x509.load_pem_x509_certificates(data))
    except ValueError:
        return False


def _check_key(path: Path, data: bytes, cert: Path) -> None:
    try:
        key = load_pem_private_key(data, password=None)
    except TypeError:
        raise CliError(f"{path} is encrypted; give an unencrypted PEM key") from None
    except ValueError:
        raise CliError(f"{path} is not a PEM private key") from None
    # OpenSSL would only say "key values mismatch"; name the files instead.
    leaf = x509.load_pem_x509_certificates(cert.read_bytes())[0]
    if _spki(leaf.public_key()) != _spki(key.public_key()):
        raise CliError(f"{path} is not the key of {cert}")


def _spki(public_key: Any) -> bytes:
    return bytes(public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))


def request_token(request: TokenCall) -> Answer:
    """POST to the token endpoint over mTLS; network and TLS failures become one-line errors."""
    body = request.body()
    try:
        response = requests.post(
            request.url,
            data=json.dumps(body).encode() if body else b"",
            headers={"Content-Type": "application/json"} if body else {},
            cert=(str(request.cert), str(request.key)),
            verify=str(request.ca) if request.ca else True,
            timeout=request.timeout_seconds,
        )
    except requests.exceptions.SSLError as exc:
        raise CliError(f"TLS with {_origin(request.url)} failed: {_tls_reason(exc)}") from None
    except requests.exceptions.Timeout:
        raise CliError(f"no answer from {_origin(request.url)} within "
                       f"{request.timeout_seconds:g}s") from None
    except requests.exceptions.ConnectionError as exc:
        raise CliError(f"cannot connect to {_origin(request.url)}: {_connect_reason(exc)}") from None
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema):
        raise CliError(f"{request.url!r} is not an http(s) URL") from None
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        kind = response.headers.get("Content-Type", "no content type")
        raise CliError(f"unexpected answer from {_origin(request.url)}: "
                       f"{response.status_code} ({kind})")
    return Answer(response.status_code, payload)


def run_token_call(request: TokenCall, *, url_only: bool = False) -> int:
    """What ``certsas token`` does: print the answer, or the refusal on one line."""
    check_files(request)
    answer = request_token(request)
    if answer.status != 200:
        print(f"certsas token: refused: {answer.refusal}", file=sys.stderr)
        return EXIT_REFUSED
    print(answer.payload.get("url", "") if url_only else json.dumps(answer.payload, indent=2))
    return 0


def _origin(url: str) -> str:
    return urlsplit(url).netloc or url


def _tls_reason(exc: BaseException) -> str:
    """The innermost ssl error's reason (CERTIFICATE_VERIFY_FAILED, ...), not urllib3's prose."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"server certificate not trusted ({seen.verify_message})"
        if isinstance(seen, ssl.SSLError) and seen.reason:
            return str(seen.reason).lower().replace("_", " ")
        nested = [a for a in seen.args if isinstance(a, BaseException)]
        seen = seen.__cause__ or seen.__context__ or (nested[0] if nested else None)
    return "handshake failed (is a client certificate required and accepted?)"


def _connect_reason(exc: BaseException) -> str:
    text = str(exc)
    for needle, reason in (("refused", "connection refused"),
                           ("Name or service not known", "unknown host"),
                           ("reset", "connection reset (client certificate refused?)")):
        if needle in text:
            return reason
    return "connection failed"
