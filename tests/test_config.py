"""Typed setting readers: a bad value is one line naming the setting and the value."""

from __future__ import annotations

import pytest
from scrapy.settings import Settings

from bilicrawl.config import ConfigError, get_choice, get_float_list, get_int_list, get_str_list


def test_a_choice_is_read_or_refused_with_the_choices_named() -> None:
    settings = Settings({"BILI_VIDEO_ENDPOINT": "view"})
    assert get_choice(settings, "BILI_VIDEO_ENDPOINT", ("detail", "view")) == "view"
    assert get_choice(Settings(), "BILI_VIDEO_ENDPOINT", ("detail", "view"), "detail") == "detail"
    with pytest.raises(ConfigError) as raised:
        get_choice(Settings({"X": "viwe"}), "X", ("detail", "view"))
    assert str(raised.value) == "X must be one of ('detail', 'view'), not 'viwe'"


@pytest.mark.parametrize(("value", "expected"), [
    ("0.5,2,5", (0.5, 2.0, 5.0)), ([1, 2.5], (1.0, 2.5)), ("", ()), ([], ()),
])  # fmt: skip
def test_a_list_of_delays_is_read(value: object, expected: tuple[float, ...]) -> None:
    assert get_float_list(Settings({"D": value}), "D") == expected


@pytest.mark.parametrize("value", ["1,soon", "-1", "1,inf", [0.5, "nan"]])
def test_a_bad_list_of_delays_is_one_line(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^D must be a list of numbers"):
        get_float_list(Settings({"D": value}), "D")


@pytest.mark.parametrize(("value", "expected"), [
    ("/x/a/, /x/b/", ("/x/a/", "/x/b/")), (["Mozilla/5.0 (X11)"], ("Mozilla/5.0 (X11)",)),
    ("", ()), ([], ()),
])  # fmt: skip
def test_a_list_of_strings_is_read(value: object, expected: tuple[str, ...]) -> None:
    assert get_str_list(Settings({"S": value}), "S") == expected


@pytest.mark.parametrize("value", ["a,,b", ["a", 1], [" "], 5])
def test_a_bad_list_of_strings_is_one_line(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^S must be a list of (non-empty )?strings, not "):
        get_str_list(Settings({"S": value}), "S")


def test_a_number_where_a_list_is_due_is_one_line() -> None:
    with pytest.raises(ConfigError) as raised:
        get_int_list(Settings({"CODES": -412}), "CODES")
    assert str(raised.value) == "CODES must be a list of whole numbers, not -412"
