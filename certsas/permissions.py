"""SAS permission letters: the subset certsas grants, in the order the service expects."""

from __future__ import annotations

ORDER = "racwdl"
# Listing applies to a container, never to one blob.
CONTAINER_ONLY = frozenset("l")


def normalize_permissions(letters: str) -> str:
    """``letters`` as a set in ``racwdl`` order; ValueError for an unknown or no letter."""
    unknown = sorted(set(letters) - set(ORDER))
    if unknown:
        raise ValueError(f"unknown permission letter(s) {''.join(unknown)!r}; use {ORDER}")
    if not letters:
        raise ValueError("no permission letters")
    return "".join(letter for letter in ORDER if letter in letters)


def for_blob(letters: str) -> str:
    """The letters that apply to a single blob."""
    return "".join(letter for letter in letters if letter not in CONTAINER_ONLY)
