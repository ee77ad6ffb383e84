"""certsas over mutual TLS: one JSON POST, and what can go wrong with it in one line."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from certsas.client.errors import Refused, Unreachable
from certsas.client.identity import Identity


class _ContextAdapter(HTTPAdapter):
    """requests' documented extension point for TLS settings: the pool's ssl_context."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["ssl_context"] = self._context
        return super().proxy_manager_for(*args, **kwargs)


class Service:
    """POSTs to certsas endpoints presenting ``identity``; ``ca`` is a PEM bundle for the
    server (default: what requests trusts). Safe to share between threads."""

    def __init__(self, identity: Identity, ca: str | Path | None, timeout: float) -> None:
        self._verify: bool | str = str(ca) if ca is not None else True
        self._timeout = timeout
        self._session = requests.Session()
        self._session.mount("https://", _ContextAdapter(identity.ssl_context(ca)))

    def post(self, url: str, body: dict[str, Any], *, expect: int) -> dict[str, Any]:
        """The JSON object of a ``expect`` answer; :class:`Refused` for certsas's refusals,
        :class:`Unreachable` for anything else."""
        data = json.dumps(body).encode() if body else b""
        try:
            response = self._session.post(
                url, data=data, headers={"Content-Type": "application/json"} if body else {},
                verify=self._verify, timeout=self._timeout, allow_redirects=False)
        except requests.exceptions.SSLError as exc:
            raise Unreachable(f"TLS with {origin(url)} failed: {_tls_reason(exc)}") from None
        except requests.exceptions.Timeout:
            raise Unreachable(f"no answer from {origin(url)} within {self._timeout:g}s") from None
        except requests.exceptions.ConnectionError as exc:
            raise Unreachable(f"cannot connect to {origin(url)}: {_connect_reason(exc)}") from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema):
            raise Unreachable(f"{url[:200]!r} is not an http(s) URL") from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict) and response.status_code == expect:
            return payload
        if isinstance(payload, dict) and isinstance(payload.get("error"), str):
            raise Refused(response.status_code, payload["error"], str(payload.get("message", "")))
        kind = response.headers.get("Content-Type", "no content type")
        raise Unreachable(f"unexpected answer from {origin(url)}: {response.status_code} ({kind})")

    def close(self) -> None:
        self._session.close()


def origin(url: str) -> str:
    return urlsplit(url).netloc or url[:200]


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
