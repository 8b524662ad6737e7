"""Drop items that do not match their class's JSON Schema, before anything stores them.

Each class in ``ITEM_CLASSES`` is checked against
``ItemAdapter.get_json_schema(cls)``; the validators are built, and the schemas
checked, once when the pipeline is created. Other item types are dropped too.
Drops raise :class:`InvalidItem` with ``log_level="INFO"``, so Scrapy logs one
INFO line per drop and no traceback; no custom ``LogFormatter`` is needed.

Reads no settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from jsonschema.exceptions import best_match
from jsonschema.validators import Draft202012Validator, validator_for
from scrapy.exceptions import DropItem

from bilicrawl.items import ITEM_CLASSES
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from typing import Self

    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator
    from scrapy.crawler import Crawler


class InvalidItem(DropItem):
    """An item that is not a valid instance of one of bilicrawl's item classes."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, log_level="INFO")
        self.reason = reason
        """Low-cardinality cause, e.g. ``stat.view:type``; the tail of the stats key."""


UNKNOWN_ITEM_CLASS = "unknown_item_class"
"""Drop reason of items whose type is not in ``ITEM_CLASSES``."""


def build_validator(item_class: type) -> Validator:
    """Return a validator for an item class's JSON Schema, after checking the schema."""
    schema = ItemAdapter.get_json_schema(item_class)
    validator_class = validator_for(schema, default=Draft202012Validator)
    validator_class.check_schema(schema)
    return validator_class(schema)


def error_reason(error: ValidationError) -> str:
    """Return ``<field path without list indices>:<validator>`` for a validation error.

    A missing field is named in the path (``owner.mid:required``), so one reason
    covers that field in every item, whatever the list positions.
    """
    path = [str(part) for part in error.absolute_path if not isinstance(part, int)]
    if error.validator == "required" and isinstance(error.instance, dict):
        path += [field for field in error.validator_value if field not in error.instance][:1]
    return f"{'.'.join(path) or '<root>'}:{error.validator}"


class ValidationPipeline:
    """Pass valid items unchanged; drop the others with :class:`InvalidItem`."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.validators = {item_class: build_validator(item_class) for item_class in ITEM_CLASSES}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        """Return the item if it is valid, else count and raise :class:`InvalidItem`."""
        item_class = type(item)
        validator = self.validators.get(item_class)
        if validator is None:
            raise self._dropped(
                item_class,
                f"{item_class.__name__} is not a bilicrawl item class",
                UNKNOWN_ITEM_CLASS,
            )
        document = ItemAdapter(item).asdict()
        error = best_match(validator.iter_errors(document))
        if error is not None:
            key = " ".join(f"{field}={document.get(field)!r}" for field in item_class.natural_key)
            location = ".".join(str(part) for part in error.absolute_path) or "<root>"
            raise self._dropped(
                item_class,
                f"Invalid {item_class.__name__} {key}: at {location}: {error.message}",
                error_reason(error),
            )
        self.crawler.stats.inc_value(stat_key("items", item_class.__name__))
        return item

    def _dropped(self, item_class: type, message: str, reason: str) -> InvalidItem:
        stats = self.crawler.stats
        stats.inc_value(stat_key("validate", "dropped", item_class.__name__))
        stats.inc_value(stat_key("validate", "dropped_reason", reason))
        return InvalidItem(message, reason=reason)
