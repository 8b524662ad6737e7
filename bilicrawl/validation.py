"""Validation of item documents against their class's JSON Schema, a step of storage.

The storage pipeline checks each item's document against
``ItemAdapter.get_json_schema(cls)`` with a ``fastjsonschema`` validator
compiled once per class; ``jsonschema`` explains only the rejected ones. An
invalid item, or one of a class that is not stored, raises :class:`InvalidItem`,
which Scrapy logs at INFO. Why both validators is in docs/storage.md ("Validation").

Reads no settings. Stats: ``bilicrawl/items/<class>``,
``bilicrawl/validate/dropped/<class>``, ``bilicrawl/validate/dropped_reason/<reason>``.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import fastjsonschema
from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem

from bilicrawl.items import ITEM_CLASSES
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from collections.abc import Callable

    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator
    from scrapy.statscollectors import StatsCollector

    from bilicrawl.items import StoredItem
    from bilicrawl.store.documents import Document


class InvalidItem(DropItem):
    """An item that is not a valid instance of one of bilicrawl's item classes."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, log_level="INFO")
        self.reason = reason
        """Low-cardinality cause, e.g. ``stat.view:type``; the tail of the stats key."""


UNKNOWN_ITEM_CLASS = "unknown_item_class"
"""Drop reason of items whose type is not in ``ITEM_CLASSES``."""


@functools.cache
def build_validator(item_class: type) -> Validator:
    """Return a jsonschema validator for an item class's JSON Schema, after checking the schema."""
    # Imported only to explain a drop: it costs 60 ms of every crawl's start-up otherwise.
    from jsonschema.validators import Draft202012Validator, validator_for  # noqa: PLC0415

    schema = ItemAdapter.get_json_schema(item_class)
    validator_class = validator_for(schema, default=Draft202012Validator)
    validator_class.check_schema(schema)
    return validator_class(schema)


@functools.cache
def build_fast_validator(item_class: type) -> Callable[[Document], Any]:
    """Return ``fastjsonschema``'s compiled validator for an item class's JSON Schema.

    It raises ``JsonSchemaValueException`` for an invalid document. Defaults in
    the schema are not filled in: the document is stored as it was checked.
    """
    return fastjsonschema.compile(ItemAdapter.get_json_schema(item_class), use_default=False)


def error_reason(error: ValidationError) -> str:
    """Return ``<field path without list indices>:<validator>`` for a validation error.

    A missing field is named in the path (``owner.mid:required``), so one reason
    covers that field in every item, whatever the list positions.
    """
    path = [str(part) for part in error.absolute_path if not isinstance(part, int)]
    if error.validator == "required" and isinstance(error.instance, dict):
        required: list[str] = error.validator_value  # type: ignore[assignment]  # a list for "required"
        path += [field for field in required if field not in error.instance][:1]
    return f"{'.'.join(path) or '<root>'}:{error.validator}"


def fast_error_reason(error: fastjsonschema.JsonSchemaValueException) -> tuple[str, str]:
    """Return the location and reason of a compiled validator's error, as jsonschema's are."""
    parts = [str(part) for part in (error.path or [])[1:]]  # the first part is "data"
    fields = [part for part in parts if not part.isdigit()]
    return ".".join(parts) or "<root>", f"{'.'.join(fields) or '<root>'}:{error.rule}"


class ItemValidator:
    """Checks item documents, counting the valid ones and the drops in the crawl's stats."""

    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats
        self.item_classes = frozenset(ITEM_CLASSES)

    def check(self, item_class: type[StoredItem], checked: Document) -> None:
        """Return if *checked*, an *item_class* item's document, is valid; else raise
        :class:`InvalidItem`."""
        if item_class not in self.item_classes:
            raise self._dropped(
                item_class,
                f"{item_class.__name__} is not a bilicrawl item class",
                UNKNOWN_ITEM_CLASS,
            )
        try:
            # Compiled on the first item of its class: a crawl pays only for what it stores.
            # A class is hashable; mypy checks it against its instances' __hash__ (None: attrs eq).
            validate = build_fast_validator(item_class)  # type: ignore[arg-type]  # see above
            validate(checked)
        except fastjsonschema.JsonSchemaValueException as fast_error:
            raise self._invalid(item_class, checked, fast_error) from None
        self.stats.inc_value(stat_key("items", item_class.__name__))

    def _invalid(
        self,
        item_class: type[StoredItem],
        checked: Document,
        fast_error: fastjsonschema.JsonSchemaValueException,
    ) -> InvalidItem:
        """Explain a document the compiled validator rejected, with jsonschema's best error."""
        from jsonschema.exceptions import best_match  # noqa: PLC0415 (see build_validator)

        key = " ".join(f"{field}={checked.get(field)!r}" for field in item_class.natural_key)
        # A class is hashable; mypy checks it against its instances' __hash__ (None: attrs eq).
        validator = build_validator(item_class)  # type: ignore[arg-type]  # see above
        error = best_match(validator.iter_errors(checked))
        if error is None:  # never seen: then the compiled validator explains its decision
            location, reason = fast_error_reason(fast_error)
            message = fast_error.message
        else:
            location = ".".join(str(part) for part in error.absolute_path) or "<root>"
            reason, message = error_reason(error), error.message
        return self._dropped(
            item_class, f"Invalid {item_class.__name__} {key}: at {location}: {message}", reason
        )

    def _dropped(self, item_class: type, message: str, reason: str) -> InvalidItem:
        stats = self.stats
        stats.inc_value(stat_key("validate", "dropped", item_class.__name__))
        stats.inc_value(stat_key("validate", "dropped_reason", reason))
        return InvalidItem(message, reason=reason)
