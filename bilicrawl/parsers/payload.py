"""Typed reads from a decoded API payload, shared by every parser.

Each helper names the field path in the ``PayloadError`` it raises, so a
changed or broken payload says exactly what was wrong instead of surfacing
as a ``KeyError`` or a wrong value further down.
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


class PayloadError(ValueError):
    """A payload lacks a required field or has one of the wrong type."""


def check(value: Any, kind: type[T], path: str) -> T:
    """Return ``value`` if it is a ``kind``, else raise ``PayloadError`` naming ``path``."""
    # bool is an int subclass; a flag where a count belongs is a wrong shape.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise PayloadError(f"field {path!r} should be {kind.__name__}, got {value!r}")
    return value


def required(obj: dict[str, Any], key: str, kind: type[T], path: str) -> T:
    """Return ``obj[key]`` as a ``kind``; missing or null raises ``PayloadError``."""
    value = obj.get(key)
    if value is None:
        raise PayloadError(f"required field {path!r} is missing")
    return check(value, kind, path)


def optional(obj: dict[str, Any], key: str, kind: type[T], path: str) -> T | None:
    """Return ``obj[key]`` as a ``kind``, or None when it is missing or null."""
    value = obj.get(key)
    return None if value is None else check(value, kind, path)
