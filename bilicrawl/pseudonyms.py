"""Pseudonymisation of stored documents (``BILI_PSEUDONYMIZE``): keyed user ids, no names.

When on, every user id in an item's ``user_id_fields`` is replaced by
:meth:`Pseudonymizer.pseudonym` (HMAC-SHA256 with ``BILI_PSEUDONYM_KEY``, 63
bits) and its ``personal_fields`` are left out of the stored document: the
storage pipeline applies it after validation, so an item is validated as
crawled and stored without personal data. Resume and the input ledger use it to
find stored keys. Why a keyed hash is in README ("Personal data").

Settings: ``BILI_PSEUDONYMIZE``, ``BILI_PSEUDONYM_KEY`` (required when on).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from typing import TYPE_CHECKING, Any

from bilicrawl.config import ConfigError, get_bool

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy.settings import BaseSettings

    from bilicrawl.items import StoredItem
    from bilicrawl.store.documents import Document, Key

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

    def key(self, item_class: type[StoredItem], key: Key) -> Key:
        """Return the stored form of a natural key of *item_class*, user ids hashed."""
        ids = set(item_class.user_id_fields)
        return tuple(
            self.pseudonym(value) if field in ids else value
            for field, value in zip(item_class.natural_key, key, strict=True)
        )

    def apply(self, item_class: type[StoredItem], document: Document) -> None:
        """Hash the user ids of *document* and delete its personal fields, in place.

        A user id given as text (a danmaku's ``mid_hash``, a CRC32 of the mid in
        hex, which can be inverted) becomes the pseudonym in hex: it keeps its type.
        """
        for path in item_class.user_id_fields:
            _update(document, path.split("."), self._replacement)
        for path in item_class.personal_fields:
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


def pseudonymizer_from_settings(settings: BaseSettings) -> Pseudonymizer | None:
    """Return the crawl's pseudonymizer with ``BILI_PSEUDONYMIZE``, else None."""
    if not get_bool(settings, "BILI_PSEUDONYMIZE"):
        return None
    key = str(settings.get("BILI_PSEUDONYM_KEY") or "")
    if len(key) < MIN_KEY_LENGTH:
        raise ConfigError(
            f"BILI_PSEUDONYMIZE needs BILI_PSEUDONYM_KEY (environment or setting) of at "
            f"least {MIN_KEY_LENGTH} characters, kept secret and the same for every crawl "
            f"whose data is joined; it is {'too short' if key else 'not set'}"
        )
    return Pseudonymizer(key)
