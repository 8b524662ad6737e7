"""Item classes declare themselves: every stored one is registered, routed and documented."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import attrs

import bilicrawl.parsers
import bilicrawl.spiders
from bilicrawl.items import ITEM_CLASSES, StoredItem
from bilicrawl.store.documents import COLLECTIONS

README = Path(__file__).resolve().parents[1] / "README.md"


def spider_item_classes() -> set[type]:
    """The stored item classes the spiders and their parsers use."""
    found = set()
    for package in (bilicrawl.spiders, bilicrawl.parsers):
        for module_info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{module_info.name}")
            found |= {
                value
                for value in vars(module).values()
                if isinstance(value, type) and issubclass(value, StoredItem)
            }
    return found - {StoredItem}


def test_every_item_class_a_spider_yields_is_registered_and_routed() -> None:
    used = spider_item_classes()
    assert used == set(ITEM_CLASSES), "every class is used, and every one used is registered"
    assert set(COLLECTIONS) == {cls.collection for cls in ITEM_CLASSES}
    for cls in ITEM_CLASSES:
        assert COLLECTIONS[cls.collection].natural_key == cls.natural_key, cls


def test_every_registered_class_is_the_attrs_class_and_names_its_storage() -> None:
    assert len({cls.__name__ for cls in ITEM_CLASSES}) == len(ITEM_CLASSES) == 16
    for cls in ITEM_CLASSES:
        assert attrs.has(cls), f"{cls.__name__}: the class attrs built, not the one before it"
        fields = {field.name for field in attrs.fields(cls)}
        row_fields = set(cls.row_fields)
        assert set(cls.natural_key) <= (row_fields if cls.rows_field else fields), cls
        assert not cls.describes or set(cls.describes) <= {c.collection for c in ITEM_CLASSES}


def test_every_registered_class_is_in_the_readme_storage_table() -> None:
    table = [
        line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("| `")
    ]
    for cls in ITEM_CLASSES:
        assert any(
            f"`{cls.collection}`" in line and f"`{cls.__name__}`" in line for line in table
        ), f"{cls.__name__} in the README's storage table"


def test_items_have_no_instance_dict() -> None:
    """The base adds no per-item dict: items stay as small as attrs makes them."""
    for cls in ITEM_CLASSES:
        assert cls.__dictoffset__ == 0, f"{cls.__name__} instances have a __dict__"
