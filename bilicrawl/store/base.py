"""The interface every store implements, and the filters its readers take.

A :class:`Store` writes batches of upserts and reads keys, documents and counts
of a collection, optionally filtered by a :data:`Where`. It is synchronous and
used by one thread at a time: the storage pipeline runs it on its worker
thread, other readers (resume, replay, scripts) open their own.
"""

from __future__ import annotations

import errno
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from bilicrawl.config import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from types import TracebackType
    from typing import Self

    from scrapy.settings import BaseSettings

    from bilicrawl.store.documents import Document, Key, Upsert

Where = Mapping[str, Any]
"""A filter on documents, in MongoDB's syntax, of which stores support a subset: a
dotted field path mapped to a value (equal to it), to ``{"$ne": None}`` (present and
not null) or to comparisons (``{"$gte": 1700000000, "$lt": 1800000000}``)."""

COMPARISONS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
"""The comparison operators a :data:`Where` may use, with their SQL spelling."""


class Condition(NamedTuple):
    """One test of a :data:`Where`: ``path`` (split at dots), an SQL operator, a value."""

    path: tuple[str, ...]
    operator: str
    """``=``, ``>``, ``>=``, ``<``, ``<=``, or ``IS NOT NULL`` (``value`` None)."""
    value: Any


def conditions(where: Where | None) -> list[Condition]:
    """Return the tests of a :data:`Where`, or raise ValueError for what stores do not support."""
    tests = []
    for field, wanted in (where or {}).items():
        path = tuple(field.split("."))
        if not isinstance(wanted, dict):
            if wanted is None:
                raise ValueError(f"{field}: compare to a value; {{'$ne': None}} for present")
            tests.append(Condition(path, "=", wanted))
            continue
        for operator, value in wanted.items():
            if operator == "$ne" and value is None:
                tests.append(Condition(path, "IS NOT NULL", None))
            elif operator in COMPARISONS and value is not None:
                tests.append(Condition(path, COMPARISONS[operator], value))
            else:
                supported = ", ".join(["$ne: None", *COMPARISONS])
                raise ValueError(f"{field}: {operator} {value!r} is not supported ({supported})")
    return tests


class Store(ABC):
    """Documents stored by natural key, one collection per item class's ``collection``."""

    @classmethod
    @abstractmethod
    def from_settings(cls, setting: str, location: str, settings: BaseSettings) -> Self:
        """Return the store at *location*, named by the setting *setting*, not yet open.

        Raise :class:`~bilicrawl.config.ConfigError` for a location that cannot be one.
        """

    @property
    @abstractmethod
    def name(self) -> str:
        """The store in words, for log lines: ``the SQLite database data/bilicrawl.db``."""

    @property
    @abstractmethod
    def dead_letter_dir(self) -> Path:
        """Where dead letters go when ``BILI_DEAD_LETTER_DIR`` is empty."""

    def check(self) -> None:  # noqa: B027 (only SQLite has something to check)
        """Raise ConfigError now if the store obviously cannot be used: before a crawl fetches."""

    @abstractmethod
    def open(self) -> None:
        """Connect, and create every collection and its unique key index if missing."""

    @abstractmethod
    def close(self) -> None:
        """Disconnect."""

    @abstractmethod
    def write(self, collection: str, upserts: list[Upsert]) -> None:
        """Apply a batch as one ordered step: full documents replace, partial ones merge.

        Upserts by natural key are idempotent, so a batch retried after a partial
        failure stores what it would have stored once.
        """

    @abstractmethod
    def keys(self, collection: str, where: Where | None = None) -> set[Key]:
        """Return the natural key of every document of *collection* matching *where*."""

    @abstractmethod
    def documents(self, collection: str, where: Where | None = None) -> Iterator[Document]:
        """Yield the documents of *collection* matching *where*, by ascending natural key."""

    @abstractmethod
    def count(self, collection: str, where: Where | None = None) -> int:
        """Return how many documents of *collection* match *where*."""

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def location_error(setting: str, path: Path, error: OSError) -> ConfigError:
    """Return the one-line error for a store location the OS refused."""
    reason = error.strerror or str(error)
    if error.filename is not None and str(error.filename) != str(path):
        reason = f"{reason}: {str(error.filename)!r}"
    return ConfigError(f"{setting} {str(path)!r} cannot be used: {reason}")


def check_directory(setting: str, path: Path) -> None:
    """Raise ConfigError now if the directory *path* obviously cannot be created.

    That is, when it or one of its parents is a file. It is created only when a
    document needs it; other refusals (permissions) are logged then.
    """
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                error = OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(candidate))
                raise location_error(setting, path, error)
            return
