"""GcTuning: the collector's threshold is raised while the engine runs, and restored."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from scrapy import Spider
from scrapy.utils.test import get_crawler

from bilicrawl.config import ConfigError
from bilicrawl.extensions.gc import GcTuning
from tests.utils import project_settings


@pytest.fixture(autouse=True)
def _restore_threshold() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_raised_while_the_engine_runs_and_restored_after() -> None:
    gc.set_threshold(700, 10, 10)
    crawler = get_crawler(Spider, {**project_settings(), "BILI_GC_THRESHOLD": 5000})
    tuning = crawler.get_extension(GcTuning)
    tuning.engine_started()
    assert gc.get_threshold() == (5000, 10, 10)
    tuning.engine_stopped()
    assert gc.get_threshold() == (700, 10, 10)


def test_zero_leaves_the_collector_alone() -> None:
    crawler = get_crawler(Spider, {**project_settings(), "BILI_GC_THRESHOLD": 0})
    assert crawler.get_extension(GcTuning) is None


def test_a_bad_value_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="BILI_GC_THRESHOLD"):
        get_crawler(Spider, {**project_settings(), "BILI_GC_THRESHOLD": "lots"})
