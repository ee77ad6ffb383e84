"""Certificate thumbprints: the registry key (SHA-256) and the portal's label (SHA-1).

Computed here and nowhere else, from the exact DER bytes, so the app, the command
line and the tests can never disagree about which key a certificate has.
"""

from __future__ import annotations

import hashlib
import re

_HEX = re.compile(r"[0-9A-F]+")


def sha256_thumbprint(der: bytes) -> str:
    """SHA-256 of the DER, uppercase hex: the registry's key."""
    return hashlib.sha256(der).hexdigest().upper()


def sha1_thumbprint(der: bytes) -> str:
    """SHA-1 of the DER, uppercase hex: only a label, what the Azure portal shows."""
    return hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()


def normalize_thumbprint(text: str) -> str:
    """A SHA-256 (64 hex digits) or SHA-1 (40) thumbprint in canonical form.

    Any case, colons or spaces between the bytes allowed; ValueError otherwise. Invisible
    direction marks are dropped too: Windows' certificate dialog puts a U+200E before the
    thumbprint it lets you copy.
    """
    cleaned = re.sub(r"[\s:\u200e\u200f\ufeff]", "", text)
    # ASCII first: str.upper() would turn some letters into hex digits ("\ufb00" into "FF").
    cleaned = cleaned.upper() if cleaned.isascii() else ""
    if len(cleaned) not in (40, 64) or not _HEX.fullmatch(cleaned):
        raise ValueError("not a SHA-256 (64 hex digits) or SHA-1 (40 hex digits) thumbprint")
    return cleaned
