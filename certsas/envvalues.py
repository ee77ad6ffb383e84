"""One setting's value from the environment, checked: text, whole numbers, seconds, URLs,
table names and networks; and :class:`Problems`, which reads each on its own so one
reading names every problem (:mod:`certsas.config` assembles the settings from these).

A message never repeats a setting's value: a value pasted into the wrong setting may be
a key.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import TypeVar

from certsas.errors import ConfigurationError, ConfigurationErrors

_KEY_VAULT_REFERENCE = re.compile(r"^\s*@Microsoft\.KeyVault\(", re.IGNORECASE)

T = TypeVar("T")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Problems:
    """One reading of the settings: each is read on its own, and a wrong one is noted and
    stood in for by its default, so the reading goes on and names every problem."""

    def __init__(self) -> None:
        self.found: list[ConfigurationError] = []

    def read(self, read: Callable[[], T], fallback: T) -> T:
        try:
            return read()
        except ConfigurationErrors as errors:  # a group of settings read the same way
            self.found.extend(errors.errors)
        except ConfigurationError as error:
            self.found.append(error)
        return fallback

    def add(self, error: ConfigurationError) -> None:
        self.found.append(error)

    def check(self) -> None:
        """Raise every problem found so far, at once."""
        if self.found:
            raise ConfigurationErrors(self.found)


def read_text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    if value:
        refuse_key_vault_reference(name, value)
    return value or None


def refuse_key_vault_reference(name: str, value: str) -> None:
    # App Service leaves the reference text as the value when it cannot resolve it.
    if _KEY_VAULT_REFERENCE.match(value):
        raise ConfigurationError(
            name, "is an unresolved Key Vault reference (check the app's identity, its access "
                  "to the vault, and the secret URI)")


def parse_networks(value: str, name: str) -> tuple[Network, ...]:
    networks = []
    for part in value.split(","):
        if not part.strip():
            continue
        try:
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise ConfigurationError(name, "must be a comma-separated list of CIDRs") from None
    return tuple(networks)


def read_url(env: Mapping[str, str], name: str) -> str | None:
    value = read_text(env, name)
    if value is not None and not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", value, re.IGNORECASE):
        raise ConfigurationError(name, "must be an http:// or https:// URL")
    # SPEC §2a: a password in a URL ends up in every log line that names the URL.
    if value is not None and "@" in re.split(r"[/?#]", value.split("://", 1)[1], maxsplit=1)[0]:
        raise ConfigurationError(name, "carries credentials (user:password@ before the host); "
                                       "a revocation URL must not hold any")
    return value


def read_integer(env: Mapping[str, str], name: str, default: int, *, minimum: int,
             maximum: int | None = None) -> int:
    raw = read_text(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(name, "is not a whole number") from None
    if value < minimum:
        raise ConfigurationError(name, f"must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigurationError(name, f"must be at most {maximum}")
    return value


def read_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = read_text(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(name, "is not a number") from None
    if not 0 < value <= 60:
        raise ConfigurationError(name, "must be above 0 and at most 60 seconds")
    return value


def read_table_name(env: Mapping[str, str], name: str, default: str) -> str:
    value = read_text(env, name) or default
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,62}", value):
        raise ConfigurationError(name, "is not a valid table name (3 to 63 letters and digits, "
                                       "starting with a letter)")
    return value


# NCRONTAB as the Functions timer parses it (NCrontab, seconds first): each field a list
# of "*", a value, or a range "a-b", each with an optional "/step"; months and days of
# the week also by English name or a prefix of three letters or more.
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")
_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("second", 0, 59, ()), ("minute", 0, 59, ()), ("hour", 0, 23, ()),
    ("day", 1, 31, ()), ("month", 1, 12, _MONTHS), ("day of the week", 0, 6, _DAYS))
_CRON_NUMBER = re.compile(r"[0-9]{1,2}")


def ncrontab_problem(schedule: str) -> str | None:
    """Why the timer would refuse ``schedule``, or None. A schedule the host cannot parse
    fails the timer function at start-up, silently for the app's own settings check; this
    is stricter than the host rather than looser (the message never repeats the value)."""
    fields = schedule.split(" ")
    if len(fields) != len(_CRON_FIELDS) or not all(fields):
        return "is not an NCRONTAB expression of six fields"
    for text, (what, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        if not all(_cron_item(item, low, high, names) for item in text.split(",")):
            extra = " or a name" if names else ""
            return (f"has a {what} field that is not *, a value{extra} from {low} to {high}, "
                    "a range or a list of them, each with an optional /step")
    return None


def _cron_item(item: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    base, slash, step = item.partition("/")
    if slash and not (_CRON_NUMBER.fullmatch(step) and 1 <= int(step) <= high):
        return False
    if base == "*":
        return True
    first, dash, last = base.partition("-")
    start = _cron_value(first, low, high, names)
    end = _cron_value(last, low, high, names) if dash else start
    return start is not None and end is not None and start <= end


def _cron_value(text: str, low: int, high: int, names: tuple[str, ...]) -> int | None:
    if _CRON_NUMBER.fullmatch(text):
        return int(text) if low <= int(text) <= high else None
    lowered = text.lower()
    if len(text) >= 3 and text.isascii():
        for index, name in enumerate(names):
            if name.startswith(lowered):
                return index + low
    return None
