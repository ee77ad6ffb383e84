"""Text from certificates and operators on a terminal: every control character visible."""

from __future__ import annotations

import pytest

from certsas.cli.text import printable


@pytest.mark.parametrize(("raw", "shown"), [
    ("CN=ok", "CN=ok"),
    ("CN=a\\,b+O=c", "CN=a\\,b+O=c"),  # RFC 4514's backslashes stay as they are
    ("CN=Zoë 東京", "CN=Zoë 東京"),
    ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),  # retitles the window, then BEL
    ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),  # clears the screen
    ("line\roverwritten\n", "line\\x0doverwritten\\x0a"),
    ("tab\there\x00\x7f", "tab\\x09here\\x00\\x7f"),
    ("\x9b31m", "\\x9b31m"),  # C1 CSI: an escape sequence in one character
    ("CN=evil\u202elanigiro", "CN=evil\\u202elanigiro"),  # right-to-left override
    ("\u2066\u2067\u2068\u2069\u200e\u200f\u061c", "\\u2066\\u2067\\u2068\\u2069\\u200e\\u200f\\u061c"),
    ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
    ("\u2028\u2029", "\\u2028\\u2029"),
    ("CN=no\xa0break", "CN=no\\xa0break"),  # passes for a space
    ("\U000e0041\ue000", "\\U000e0041\\ue000"),  # a tag character, private use
])
def test_what_a_terminal_could_act_on_is_shown_as_an_escape(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_nothing_printed_is_left_that_a_terminal_would_act_on() -> None:
    every = "".join(chr(c) for c in range(0x30000) if not 0xD800 <= c <= 0xDFFF)
    shown = printable(every)
    assert shown.isprintable()
