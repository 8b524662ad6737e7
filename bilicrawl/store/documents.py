"""Stored documents: how an item becomes one, and how upserts of one key combine.

:func:`document` is the one way an item becomes its document, equal to
``ItemAdapter(item).asdict()`` (a golden test pins that for every item class)
and built with ``attrs.asdict`` in a tenth of the time. :data:`COLLECTIONS`
describes each collection from the item classes that fill it. The merge rules
here are the ones both stores apply (docs/storage.md).
"""

from __future__ import annotations

import json
import typing
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import attrs
import orjson
from itemadapter import ItemAdapter

from bilicrawl.items import ITEM_CLASSES

if TYPE_CHECKING:
    from bilicrawl.items import StoredItem

Document = dict[str, Any]
"""One stored document: exactly ``ItemAdapter(item).asdict()``."""
Key = tuple[Any, ...]
"""The natural key values of a document, e.g. ``(aid,)`` for a video."""


class Upsert(NamedTuple):
    """A document to store by natural key: replacing the stored one, or merged in if partial."""

    document: Document
    partial: bool


class Collection(NamedTuple):
    """A collection as the item classes that fill it declare it."""

    name: str
    natural_key: tuple[str, ...]
    fields: dict[str, Any]
    """Its documents' top-level fields and their types: a row class's ``row_fields``,
    else every field of its item classes (the natural key's types make SQLite columns)."""
    rows: bool
    """Its documents are the rows of batch items (danmaku), stored in bulk."""
    partial_rows: bool
    """Rows merge into the stored ones (a field a row lacks keeps the stored value)."""
    describes: tuple[str, ...]
    """For records, the collections whose rows they count: written after them."""


def _collection(name: str, classes: list[type[StoredItem]]) -> Collection:
    row_class = next((cls for cls in classes if cls.rows_field is not None), None)
    fields: dict[str, Any] = {}
    if row_class is not None:
        fields.update(row_class.row_fields)
    else:
        for cls in classes:
            hints = typing.get_type_hints(cls).items()
            fields.update((n, t) for n, t in hints if typing.get_origin(t) is not ClassVar)
    return Collection(
        name=name,
        natural_key=classes[0].natural_key,
        fields=fields,
        rows=row_class is not None,
        partial_rows=row_class is not None and row_class.partial,
        describes=tuple(dict.fromkeys(c for cls in classes for c in cls.describes)),
    )


def _by_collection() -> dict[str, Collection]:
    classes: dict[str, list[type[StoredItem]]] = {}
    for cls in ITEM_CLASSES:
        classes.setdefault(cls.collection, []).append(cls)
    return {name: _collection(name, members) for name, members in classes.items()}


COLLECTIONS: dict[str, Collection] = _by_collection()
"""Every collection, by name, from ``ITEM_CLASSES``."""


def write_order(collections: typing.Iterable[str]) -> list[str]:
    """Return *collections* with what their records describe, in the order to write them.

    Rows first, then documents, then records: a record is never committed
    before the rows it counts. By name within each, so the order is always the same.
    """
    wanted = set(collections)
    for name in list(wanted):
        wanted.update(COLLECTIONS[name].describes if name in COLLECTIONS else ())
    return sorted(
        wanted, key=lambda c: (not COLLECTIONS[c].rows, bool(COLLECTIONS[c].describes), c)
    )


def document(item: Any) -> Document:
    """Return the item as its stored document: a new dict equal to ``ItemAdapter(item).asdict()``.

    Nothing in the result is shared with the item but a batch item's rows
    (``rows_field``), which are its documents and are handed over, not copied.
    An attrs item with a deleted attribute, or an item of another kind, goes
    through ``ItemAdapter``, which leaves deleted fields out.
    """
    rows_field = getattr(type(item), "rows_field", None)
    if rows_field is not None:
        shallow = attrs.asdict(item, filter=lambda field, _: field.name != rows_field)
        return {**shallow, rows_field: getattr(item, rows_field)}
    if attrs.has(type(item)):
        try:
            return attrs.asdict(item)
        except AttributeError:
            pass  # a field was deleted (del item.title): ItemAdapter omits it
    return ItemAdapter(item).asdict()


def merge_document(stored: Document, patch: Document) -> Document:
    """Return *stored* with the partial document *patch* deep-merged in, as both stores do.

    Where the stored and the new value of a field are both objects they are
    merged the same way; any other new value (a list, None) replaces the stored
    one, and fields *patch* lacks are kept. The inputs are not changed.
    """
    merged = dict(stored)
    for field, value in patch.items():
        old = merged.get(field)
        merged[field] = (
            merge_document(old, value)
            if isinstance(old, dict) and isinstance(value, dict)
            else value
        )
    return merged


def combine(earlier: Upsert | None, later: Upsert) -> Upsert:
    """Return the one upsert for a key that stores what *earlier*, then *later*, would.

    A full document replaces anything before it; a partial one is merged into
    the earlier upsert, which keeps its kind.
    """
    if earlier is None or not later.partial:
        return later
    return Upsert(merge_document(earlier.document, later.document), earlier.partial)


def key_of(document: Document, natural_key: tuple[str, ...]) -> Key:
    """Return the natural key values of a document."""
    return tuple(document[field] for field in natural_key)


def combined(upserts: list[Upsert], natural_key: tuple[str, ...]) -> list[Upsert]:
    """Return one upsert per natural key that stores what *upserts*, in order, would."""
    pending: dict[Any, Upsert] = {}
    if len(natural_key) == 1:  # rows (dmid): a tuple per row would cost a third more
        (field,) = natural_key
        for upsert in upserts:
            key = upsert.document[field]
            pending[key] = combine(pending.get(key), upsert)
    else:
        for upsert in upserts:
            key = key_of(upsert.document, natural_key)
            pending[key] = combine(pending.get(key), upsert)
    return list(pending.values())


def dump_document(document: Document) -> str:
    """Serialise a document as compact JSON that keeps CJK and emoji as-is.

    orjson writes what ``json.dumps(ensure_ascii=False, separators=(",", ":"))``
    writes, several times faster; what it refuses (integers beyond 64 bits) the
    standard library writes.
    """
    try:
        return orjson.dumps(document).decode()
    except TypeError:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"))
