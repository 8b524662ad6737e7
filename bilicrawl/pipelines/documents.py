"""An item's stored document, built once and handed from validation to storage.

:func:`document` is the one way bilicrawl turns an item into its document: the
dict that validation checks and storage writes, equal to
``ItemAdapter(item).asdict()`` (a golden test pins that for every item class),
built with ``attrs.asdict`` in a tenth of the time.

The validation pipeline builds the document, checks it and, if the item is
valid, gives it to the crawler's :class:`DocumentHandoff`; the storage pipeline
takes it from there instead of building it again. See :class:`DocumentHandoff`
for why it is keyed and owned as it is.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
from itemadapter import ItemAdapter

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

Document = dict[str, Any]
"""One stored document: exactly ``ItemAdapter(item).asdict()``."""


def document(item: Any) -> Document:
    """Return the item as its stored document: a new dict equal to ``ItemAdapter(item).asdict()``.

    Nested attrs objects become dicts, lists stay lists (tuples tuples); nothing
    in the result is shared with the item, so later changes to the item do not
    reach it, except a batch item's rows (``rows_field``), which are its
    documents and are handed over, not copied. An attrs item with a deleted
    attribute, or an item of another kind, goes through ``ItemAdapter``, which
    leaves deleted fields out.
    """
    rows_field = getattr(type(item), "rows_field", None)
    if rows_field is not None:
        # A batch item's rows are flat dicts the parser built for storage alone:
        # handed over as they are (copying them is a cost per danmaku).
        shallow = attrs.asdict(item, filter=lambda field, _: field.name != rows_field)
        return {**shallow, rows_field: getattr(item, rows_field)}
    if attrs.has(type(item)):
        try:
            return attrs.asdict(item)
        except AttributeError:
            pass  # a field was deleted (del item.title): ItemAdapter omits it
    return ItemAdapter(item).asdict()


class DocumentHandoff:
    """Documents of validated items, waiting for the store to take them: one per crawler.

    The validation pipeline :meth:`give`s the document it built and checked; the
    storage pipeline :meth:`take`s it, which removes it, so from then on the
    store alone owns the document and the handoff holds nothing. The store thus
    writes exactly the document that was validated, even if a pipeline in
    between changed the item.

    Entries are keyed by the item's identity, never its value: items are
    attrs classes with ``eq=True``, so unhashable, and two equal items are still
    two items. Each entry holds its item through a weak reference, which removes
    the entry when the item is freed, so an item that never reaches the store
    (dropped by a later pipeline, storage disabled) leaks nothing, and a new
    object at a recycled address never gets an old document (:meth:`take` also
    checks the reference). Many items can be in flight at once, in any order:
    each has its own entry. Everything runs on the reactor thread; no lock.

    When there is no entry (no validation pipeline, an item that cannot be
    weakly referenced, the same item object yielded twice and taken once
    already), :meth:`take` builds the document itself, so storing never depends
    on the handoff; it only saves a second build.
    """

    _by_crawler: ClassVar[weakref.WeakKeyDictionary[Crawler, DocumentHandoff]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[Any], Document]] = {}

    @classmethod
    def for_crawler(cls, crawler: Crawler) -> DocumentHandoff:
        """Return the crawler's handoff, shared by its validation and storage pipelines."""
        handoff = cls._by_crawler.get(crawler)
        if handoff is None:
            handoff = cls._by_crawler[crawler] = cls()
        return handoff

    def give(self, item: Any, document: Document) -> bool:
        """Leave the document of a validated item for the store; replaces an earlier one.

        Return False when the item cannot be weakly referenced: nothing is kept then.
        """
        key = id(item)
        entries = self._entries

        def forget(ref: weakref.ref[Any]) -> None:
            entry = entries.get(key)
            if entry is not None and entry[0] is ref:
                del entries[key]

        try:
            ref = weakref.ref(item, forget)
        except TypeError:
            return False  # take() builds the document
        entries[key] = (ref, document)
        return True

    def take(self, item: Any) -> Document:
        """Return, and forget, the document given for this very item; else build it."""
        entry = self._entries.pop(id(item), None)
        if entry is not None and entry[0]() is item:
            return entry[1]
        return document(item)

    def __len__(self) -> int:
        """How many documents wait to be taken."""
        return len(self._entries)
