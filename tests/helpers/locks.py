"""Another process's hold on a SQLite store, as a backup job or a second writer takes it."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


class HeldLock:
    """An exclusive lock on a SQLite file, held from creation until :meth:`release`."""

    def __init__(self, database: Path) -> None:
        self.connection = sqlite3.connect(
            database, isolation_level=None, timeout=10, check_same_thread=False
        )
        self.connection.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        self.connection.execute("ROLLBACK")
        self.connection.close()


@contextmanager
def held_lock(database: Path) -> Iterator[HeldLock]:
    """Hold an exclusive lock on *database* for the ``with`` block."""
    lock = HeldLock(database)
    try:
        yield lock
    finally:
        lock.release()
