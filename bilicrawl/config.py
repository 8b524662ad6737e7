"""Typed reads of settings and spider arguments that fail with one clear line.

Scrapy's ``settings.getfloat("X")`` fails on ``-s X=abc`` with a bare
``could not convert string to float: 'abc'`` that names neither the setting nor
where it came from. Every bilicrawl component reads its settings through these
functions instead; they raise :class:`ConfigError`, whose message names the
setting and the value, and which ``scrapy crawl`` (``bilicrawl.commands.crawl``)
reports as one line with a non-zero exit status, before anything is fetched.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from scrapy.settings import BaseSettings

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})


class ConfigError(ValueError):
    """A bad argument, setting or store location: the crawl cannot start.

    Its message is the whole explanation, shown to the user as one line.
    """


def parse_bool(name: str, value: Any) -> bool:
    """Return *value* as a boolean; raise ConfigError unless it is clearly one."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def get_bool(settings: BaseSettings, name: str) -> bool:
    """Read a boolean setting (true/false, 1/0, yes/no, on/off)."""
    return parse_bool(name, settings.get(name))


def get_float(
    settings: BaseSettings,
    name: str,
    *,
    minimum: float | None = None,
    positive: bool = False,
    below: float | None = None,
) -> float:
    """Read a finite number setting, optionally at least *minimum*, positive or under *below*."""
    value = settings.get(name)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{name} must be a finite number, not {value!r}")
    if positive and number <= 0:
        raise ConfigError(f"{name} must be greater than 0, not {value!r}")
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}, not {value!r}")
    if below is not None and number >= below:
        raise ConfigError(f"{name} must be less than {below:g}, not {value!r}")
    return number


def get_int(settings: BaseSettings, name: str, *, minimum: int | None = None) -> int:
    """Read a whole-number setting, optionally at least *minimum*."""
    value = settings.get(name)
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None
    if isinstance(number, bool):
        raise ConfigError(f"{name} must be a whole number, not {value!r}")
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value!r}")
    return number


def _get_list(settings: BaseSettings, name: str, what: str) -> list[Any]:
    """Read a list setting; ConfigError, saying it must be *what*, if it is not a list."""
    try:
        return settings.getlist(name)
    except TypeError:  # neither a string nor an iterable, e.g. a number
        raise ConfigError(f"{name} must be {what}, not {settings.get(name)!r}") from None


def get_int_list(settings: BaseSettings, name: str) -> frozenset[int]:
    """Read a list of integers (``-412,-352`` on the command line)."""
    values = _get_list(settings, name, "a list of whole numbers")
    try:
        return frozenset(int(value) for value in values)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a list of whole numbers, not {values!r}") from None


def get_float_list(settings: BaseSettings, name: str, *, minimum: float = 0) -> tuple[float, ...]:
    """Read a list of finite numbers, each at least *minimum* (``0.5,2,5`` on the command line)."""
    values = _get_list(settings, name, "a list of numbers")
    try:
        numbers = tuple(float(value) for value in values)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a list of numbers, not {values!r}") from None
    if not all(math.isfinite(number) and number >= minimum for number in numbers):
        raise ConfigError(
            f"{name} must be a list of numbers of at least {minimum:g}, not {values!r}"
        )
    return numbers


def get_str_list(settings: BaseSettings, name: str) -> tuple[str, ...]:
    """Read a list of non-empty strings, each stripped (``a,b`` on the command line)."""
    values = _get_list(settings, name, "a list of strings")
    strings = tuple(value.strip() for value in values if isinstance(value, str))
    if len(strings) != len(values) or not all(strings):
        raise ConfigError(f"{name} must be a list of non-empty strings, not {values!r}")
    return strings


def get_choice(
    settings: BaseSettings, name: str, choices: Iterable[str], default: str | None = None
) -> str:
    """Read a setting that must be one of *choices* (``BILI_VIDEO_ENDPOINT=view``)."""
    value = settings.get(name, default)
    allowed = tuple(choices)
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {allowed}, not {value!r}")
    return str(value)
