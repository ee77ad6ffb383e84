"""Argument types shared by the admin and developer commands: each checks one value."""

from __future__ import annotations

import argparse

from certsas.permissions import normalize_permissions
from certsas.registry import prefix_problem
from certsas.scope import valid_container_name
from certsas.thumbprints import normalize_thumbprint


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


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


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
