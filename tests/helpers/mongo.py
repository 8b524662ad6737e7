"""mongomock as the tests use it: clients that share a server, bulk writes pymongo sends."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import mongomock
from mongomock.collection import BulkOperationBuilder
from mongomock.store import ServerStore

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest


class SharedMongomockClient(mongomock.MongoClient):
    """A mongomock client whose instances share one server, as clients of a real one do."""

    store = ServerStore()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, _store=self.store, **kwargs)


def let_mongomock_accept_sort(monkeypatch: pytest.MonkeyPatch) -> None:
    """pymongo >= 4.11 passes ``sort`` to bulk replaces and updates; mongomock 4.3 does not
    take it (https://github.com/mongomock/mongomock/issues/912).
    """
    for name in ("add_replace", "add_update"):
        add = getattr(BulkOperationBuilder, name)
        if "sort" not in inspect.signature(add).parameters:
            monkeypatch.setattr(BulkOperationBuilder, name, _ignoring_no_sort(add))


def _ignoring_no_sort(add: Callable[..., None]) -> Callable[..., None]:
    def add_with_sort(self: Any, *args: Any, sort: Any = None, **kwargs: Any) -> None:
        if sort is not None:
            raise NotImplementedError("mongomock cannot sort a bulk write")
        add(self, *args, **kwargs)

    return add_with_sort
