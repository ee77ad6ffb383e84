"""Keep the SAS out of the request lines the HTTP stack logs.

urllib3 logs every request line (URL and query) at DEBUG, signature included; the Azure
SDK's logging policies (``logging_enable=True``) replace the ``sig`` but keep the rest of the
token. A program that turns DEBUG on to chase a fault would write its tokens into its logs.
This filter, on those loggers only, replaces the values that make up or date a token (the
signature, its times, the delegation key's fields) before any handler sees the line, and
leaves what helps a reader (``sv``, ``sr``, ``sp``, the path, ``comp``, ``restype``).
"""

from __future__ import annotations

import logging
import re
import threading

_SECRET_FIELDS = re.compile(
    r"(?i)\b(sig|se|st|skoid|sktid|skt|ske|sks|skv|skdutid|saoid|suoid|scid)=[^&\s\"']+")
_LOGGERS = ("urllib3.connectionpool", "azure.storage.blob._shared.policies",
            "azure.core.pipeline.policies.http_logging_policy")
_installed = False
_lock = threading.Lock()


def redact(text: str) -> str:
    return _SECRET_FIELDS.sub(r"\1=REDACTED", text)


class RedactSignatures(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "sig=" in message.lower():
            record.msg, record.args = redact(message), None
        return True


def install() -> None:
    """Once per process (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        for name in _LOGGERS:
            logging.getLogger(name).addFilter(RedactSignatures())
        _installed = True
