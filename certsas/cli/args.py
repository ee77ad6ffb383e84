"""Argument types shared by the admin and developer commands: each checks one value."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping

from certsas.config import MAX_SAS_TTL_MINUTES
from certsas.grants import prefix_problem
from certsas.permissions import normalize_permissions
from certsas.scope import valid_container_name
from certsas.thumbprints import normalize_thumbprint

THUMBPRINT_HELP = ("the certificate's SHA-256 (64 hex digits) or SHA-1 (40, what the Azure "
                   "portal shows), any case, colons or spaces allowed")


def thumbprint_arg(value: str) -> str:
    try:
        return normalize_thumbprint(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value[:80]!r} is {exc}") from None


def permissions_arg(value: str) -> str:
    try:
        return normalize_permissions(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def container_arg(value: str) -> str:
    if not valid_container_name(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a valid container name")
    return value


def prefix_arg(value: str) -> str:
    problem = prefix_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(f"the prefix {problem}")
    return value


def whole_number(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value[:40]!r} is not a whole number") from None


def positive_int(value: str) -> int:
    number = whole_number(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def int_between(lowest: int, highest: int, why: str = "") -> Callable[[str], int]:
    """A whole number in ``lowest..highest``; ``why`` says where the ceiling comes from."""

    def parse(value: str) -> int:
        number = whole_number(value)
        if not lowest <= number <= highest:
            reason = f" ({why})" if why else ""
            raise argparse.ArgumentTypeError(
                f"{number} is not between {lowest} and {highest}{reason}")
        return number

    return parse


# A hundred years: longer than any certificate lives, and far inside datetime's range
# (``list --expiring 99999999`` once ended in an OverflowError traceback).
MAX_DAYS = 36500
days_arg = int_between(1, MAX_DAYS, "a hundred years")

# A registration's (or grant's) cap above what SAS_MAX_TTL_MINUTES may ever be would be a
# promise no token keeps: refused, not stored and shown as if it held.
DEFAULT_MAX_TTL_MINUTES = 60
max_ttl_minutes_arg = int_between(
    1, MAX_SAS_TTL_MINUTES,
    f"no token lives longer: SAS_MAX_TTL_MINUTES is at most {MAX_SAS_TTL_MINUTES}")
MAX_TTL_HELP = (f"longest token lifetime it allows, in minutes, 1 to {MAX_SAS_TTL_MINUTES} "
                f"(default: {DEFAULT_MAX_TTL_MINUTES}); the app's SAS_MAX_TTL_MINUTES "
                "(default 60) caps every token as well")


def service_ttl_cap(env: Mapping[str, str]) -> int | None:
    """SAS_MAX_TTL_MINUTES as these settings give it (the app's own may differ), or None
    when it is not a number (the app reports that itself)."""
    try:
        return int(env.get("SAS_MAX_TTL_MINUTES", "").strip() or DEFAULT_MAX_TTL_MINUTES)
    except ValueError:
        return None


def port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{number} is not a port number (0 picks a free one)")
    return number


def http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"{value!r} is not an http:// or https:// URL")
    return value
