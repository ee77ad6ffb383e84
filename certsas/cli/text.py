"""Text from a certificate or an operator, made safe to print on a terminal (SPEC §6).

A subject, issuer or description may hold ESC (a terminal escape sequence can repaint
the screen, retitle the window or, in some terminals, write to the clipboard), BEL,
carriage returns that overwrite the line, or U+202E and its kin, which reorder what
follows so that a name reads as something it is not. Text output shows each such
character as a visible escape (``\\x1b``, ``\\u202e``); ``--json`` keeps the exact text,
since JSON escapes what it must and a script wants the real value.

Escaped: what Python's ``str.isprintable`` calls non-printable, which is Unicode's
control (Cc: C0, DEL, C1), format (Cf: the bidi embeddings, overrides and isolates,
zero-width joiners and spaces, the BOM, soft hyphen), line and paragraph separators,
spaces other than U+0020 (a no-break space passes for a space), and surrogate,
private-use and unassigned code points, which a terminal may treat as anything.
A backslash already in the text is left as it is: RFC 4514 names use it
(``CN=a\\,b``), and doubling it would misquote every such name.
"""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` with every character a terminal could act on shown as an escape."""
    if text.isprintable():  # the common case, at C speed
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
