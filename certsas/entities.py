"""Table entities on the wire: JSON, typed with OData annotations where JSON alone is ambiguous.

The same encoding the Tables SDK writes and reads (``Edm.DateTime``, ``Edm.Int64``,
``Edm.Binary``, ``Edm.Double``), for the lean client in :mod:`certsas.tables`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def encode_entity(entity: Mapping[str, Any]) -> dict[str, Any]:
    """An entity as the Table REST API takes it: typed where JSON alone is ambiguous."""
    encoded: dict[str, Any] = {}
    for name, value in entity.items():
        if value is None:
            continue
        if isinstance(value, bool | str):
            encoded[name] = value
        elif isinstance(value, int):
            if -(2**31) <= value < 2**31:
                encoded[name] = value
            else:
                encoded[name], encoded[f"{name}@odata.type"] = str(value), "Edm.Int64"
        elif isinstance(value, float):
            encoded[name], encoded[f"{name}@odata.type"] = value, "Edm.Double"
        elif isinstance(value, datetime):
            encoded[name] = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            encoded[f"{name}@odata.type"] = "Edm.DateTime"
        elif isinstance(value, bytes):
            encoded[name] = base64.b64encode(value).decode("ascii")
            encoded[f"{name}@odata.type"] = "Edm.Binary"
        else:
            raise TypeError(f"property {name!r}: {type(value).__name__} is not stored here")
    return encoded


def decode_entity(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The properties of an answer, typed as the SDK types them (metadata dropped)."""
    entity: dict[str, Any] = {}
    for name, value in payload.items():
        if name.startswith("odata.") or name.endswith("@odata.type"):
            continue
        kind = payload.get(f"{name}@odata.type")
        if kind == "Edm.DateTime" or name == "Timestamp":
            entity[name] = parse_datetime(str(value))
        elif kind == "Edm.Int64":
            entity[name] = int(value)
        elif kind == "Edm.Binary":
            entity[name] = base64.b64decode(value)
        elif kind == "Edm.Double":
            entity[name] = float(value)
        else:
            entity[name] = value
    return entity


def parse_datetime(text: str) -> datetime:
    """``2026-01-02T03:04:05.1234567Z``: the service writes up to seven fraction digits."""
    stamp, _, fraction = text.rstrip("Z").partition(".")
    parsed = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return parsed.replace(microsecond=int((fraction + "000000")[:6])) if fraction else parsed
