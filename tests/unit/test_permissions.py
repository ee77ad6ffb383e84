"""SAS permission letters."""

from __future__ import annotations

import pytest

from certsas.permissions import for_blob, normalize_permissions


@pytest.mark.parametrize(("letters", "expected"), [
    ("r", "r"), ("lr", "rl"), ("ldwcar", "racwdl"), ("rrl", "rl"),
])
def test_normalized_to_racwdl_order(letters: str, expected: str) -> None:
    assert normalize_permissions(letters) == expected


@pytest.mark.parametrize("letters", ["", "x", "rx", "R", "r "])
def test_unknown_or_no_letters_are_refused(letters: str) -> None:
    with pytest.raises(ValueError, match="letter"):
        normalize_permissions(letters)


def test_list_does_not_apply_to_a_blob() -> None:
    assert for_blob("racwdl") == "racwd"
    assert for_blob("l") == ""
