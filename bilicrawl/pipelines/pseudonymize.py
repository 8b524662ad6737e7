"""Pseudonymisation of stored documents (``BILI_PSEUDONYMIZE``): keyed user ids, no names.

When on, every user id in an item's ``user_id_fields`` is replaced by
:meth:`Pseudonymizer.pseudonym` (HMAC-SHA256 with ``BILI_PSEUDONYM_KEY``, 63
bits) and its ``personal_fields`` are left out of the stored document. It works
on the document the validation pipeline left in the crawler's
:class:`~bilicrawl.pipelines.documents.DocumentHandoff`, so the item is
validated as crawled and stored without personal data. Why a keyed hash is in
README ("Personal data").

Settings: ``BILI_PSEUDONYMIZE``, ``BILI_PSEUDONYM_KEY`` (required when on).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import NotConfigured

from bilicrawl.config import ConfigError, get_bool
from bilicrawl.pipelines.documents import Document, DocumentHandoff

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Self

    from scrapy.crawler import Crawler

MIN_KEY_LENGTH = 16
"""Mids are few enough to enumerate: a short key would let anyone undo the hashing."""
PSEUDONYM_BITS = 63
"""A positive signed 64-bit integer, like a mid: MongoDB and SQLite store it as one."""


class Pseudonymizer:
    """Replaces user ids by keyed hashes and drops personal fields, per item class."""

    def __init__(self, key: str) -> None:
        self._key = key.encode()

    @functools.lru_cache(maxsize=65536)  # noqa: B019 (one instance per crawl; mids repeat)
    def pseudonym(self, mid: int | str) -> int:
        """Return the pseudonym of user id *mid*: stable for one key, not reversible."""
        digest = hmac.new(self._key, str(mid).encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") >> (64 - PSEUDONYM_BITS)

    def _replacement(self, value: int | str) -> int | str:
        pseudonym = self.pseudonym(value)
        return format(pseudonym, "x") if isinstance(value, str) else pseudonym

    def key(self, item_class: type, key: tuple[Any, ...]) -> tuple[Any, ...]:
        """Return the stored form of a natural key of *item_class*, user ids hashed."""
        ids = set(item_class.user_id_fields)  # type: ignore[attr-defined]
        return tuple(
            self.pseudonym(value) if field in ids else value
            for field, value in zip(item_class.natural_key, key, strict=True)  # type: ignore[attr-defined]
        )

    def apply(self, item_class: type, document: Document) -> None:
        """Hash the user ids of *document* and delete its personal fields, in place.

        A user id given as text (a danmaku's ``mid_hash``, a CRC32 of the mid in
        hex, which can be inverted) becomes the pseudonym in hex: it keeps its type.
        """
        for path in item_class.user_id_fields:  # type: ignore[attr-defined]
            _update(document, path.split("."), self._replacement)
        for path in item_class.personal_fields:  # type: ignore[attr-defined]
            _update(document, path.split("."), None)


def _update(value: Any, path: list[str], change: Callable[[Any], Any] | None) -> None:
    """Apply *change* to the field at *path* (``a[]`` steps into every element of a list
    ``a``), or delete the field if *change* is None; missing and None fields are skipped."""
    if not isinstance(value, dict):
        return
    name, rest = path[0], path[1:]
    each = name.endswith("[]")
    name = name.removesuffix("[]")
    if name not in value or value[name] is None:
        return
    if each:
        for element in value[name]:
            _update(element, rest, change)
    elif rest:
        _update(value[name], rest, change)
    elif change is None:
        del value[name]
    else:
        value[name] = change(value[name])


class PseudonymizePipeline:
    """Applies the crawl's :class:`Pseudonymizer` to each validated item's document."""

    def __init__(self, crawler: Crawler, pseudonymizer: Pseudonymizer) -> None:
        self.documents = DocumentHandoff.for_crawler(crawler)
        self.pseudonymizer = pseudonymizer

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        if not get_bool(settings, "BILI_PSEUDONYMIZE"):
            raise NotConfigured
        key = str(settings.get("BILI_PSEUDONYM_KEY") or "")
        if len(key) < MIN_KEY_LENGTH:
            raise ConfigError(
                f"BILI_PSEUDONYMIZE needs BILI_PSEUDONYM_KEY (environment or setting) of at "
                f"least {MIN_KEY_LENGTH} characters, kept secret and the same for every crawl "
                f"whose data is joined; it is {'too short' if key else 'not set'}"
            )
        return cls(crawler, Pseudonymizer(key))

    def process_item(self, item: Any) -> Any:
        document = self.documents.take(item)
        self.pseudonymizer.apply(type(item), document)
        if not self.documents.give(item, document):
            # The store would build the document again from the item, with the raw ids.
            raise TypeError(f"cannot pseudonymize {type(item).__name__}: not weakly referenceable")
        return item
