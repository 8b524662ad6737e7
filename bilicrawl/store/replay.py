"""Re-apply dead-letter files to the store: ``scrapy replay-dead-letters``.

Every ``failed-<collection>[.partial].jsonl`` is written through the store the
settings name (full documents replace, partial ones merge), so a replayed
document is stored exactly as the crawl would have stored it. Applied lines are
removed from their file, and applying a line again changes nothing, so a replay
that stops half-way is simply run again. docs/operations.md, "Replaying dead
letters", says when to run it.

Settings: the store's, ``BILI_DEAD_LETTER_DIR``, ``BILI_STORE_BATCH_SIZE``,
``BILI_STORE_ROWS_BATCH_SIZE``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from bilicrawl.config import ConfigError, get_int
from bilicrawl.store import store_from_settings
from bilicrawl.store.dead_letters import dead_letter_dir, dead_letter_files, parse_name
from bilicrawl.store.documents import COLLECTIONS, Upsert, combined, write_order

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scrapy.settings import BaseSettings

    from bilicrawl.store.base import Store
    from bilicrawl.store.documents import Document

REPORTED_LINES = 20
"""Bad lines named one by one; the rest are counted."""


def replay_dead_letters(
    settings: BaseSettings, directory: Path | None = None, *, out: IO[str] | None = None
) -> int:
    """Apply the dead letters in *directory* (default: the crawl's) to the store.

    Print one line per file and a total to *out* (stdout); return the exit status: 0 when
    every line was applied (or there was none), 1 when some were kept. A store
    that cannot be used, or a *directory* that is not one, is a ConfigError.
    """
    if directory is not None and not directory.is_dir():
        raise ConfigError(f"DIR {str(directory)!r} is not a directory")
    out = out or sys.stdout
    store = store_from_settings(settings)
    store.check()
    if directory is None:
        directory = dead_letter_dir(settings, store)
    files = dead_letter_files(directory) if directory.is_dir() else []
    if not files:
        out.write(f"Nothing to apply: no dead-letter files in {directory}\n")
        return 0
    sizes = {
        "batch_size": get_int(settings, "BILI_STORE_BATCH_SIZE", minimum=1),
        "rows_batch_size": get_int(settings, "BILI_STORE_ROWS_BATCH_SIZE", minimum=1),
    }
    with store:
        replay = _Replay(store, out, **sizes)
        replay.run(files)
    return 1 if replay.kept or replay.left_alone else 0


class _Replay:
    """One run over a directory's dead-letter files, with its counts."""

    def __init__(
        self, store: Store, out: IO[str], *, batch_size: int, rows_batch_size: int
    ) -> None:
        self.store = store
        self.out = out
        self.batch_size = batch_size
        self.rows_batch_size = rows_batch_size
        self.applied = 0
        self.kept = 0
        self.left_alone = 0
        """Files not touched: their collection is unknown."""
        self.bad_lines = 0
        self.incomplete: set[str] = set()
        """Collections some lines of which were not applied: records counting them wait."""
        self.store_error: str | None = None
        """Why the store refused a batch: the files after it are not tried."""

    def run(self, files: list[Path]) -> None:
        by_collection: dict[str, list[Path]] = {}
        for path in files:
            collection, _ = parse_name(path)
            if collection in COLLECTIONS:
                by_collection.setdefault(collection, []).append(path)
            else:
                self.left_alone += 1
                self.out.write(
                    f"{path.name}: left alone: bilicrawl has no collection {collection!r}\n"
                )
        for collection in write_order(by_collection):
            # Full documents first, then the merges, which keep what those stored:
            # split into two files, the documents of a key no longer say which came first.
            for path in sorted(by_collection.get(collection, ()), key=lambda p: parse_name(p)[1]):
                self._replay_file(path, collection)
        if self.bad_lines > REPORTED_LINES:
            self.out.write(f"... and {self.bad_lines - REPORTED_LINES:,} more bad lines, kept\n")
        count = f"{len(files):,} file{'s' if len(files) != 1 else ''}"
        self.out.write(f"Total: {self.applied:,} applied, {self.kept:,} kept ({count})\n")
        if self.store_error is not None:
            self.out.write(
                f"Not all applied: {self.store_error}; run this again once the store works\n"
            )

    def _replay_file(self, path: Path, collection: str) -> None:
        waiting = [c for c in COLLECTIONS[collection].describes if c in self.incomplete]
        if self.store_error is not None:
            self._keep_whole(path, collection, "not tried: the store failed")
            return
        if waiting:
            # A record is applied only after every row it counts: resume trusts it.
            self._keep_whole(path, collection, f"not all {', '.join(waiting)} were applied")
            return
        try:
            applied, kept, error = self._apply_file(path, collection)
        except OSError as failure:  # the file itself: it could not be rewritten or removed
            reason = failure.strerror or str(failure)
            self._keep_whole(
                path,
                collection,
                f"left whole, as it could not be rewritten:"
                f" {reason}; applying its lines again changes nothing",
            )
            return
        self.applied += applied
        self.kept += kept
        if kept:
            self.incomplete.add(collection)
        note = ""
        if error is not None:
            self.store_error = f"{self.store.name} refused a batch of {collection}: {error}"
            note = f" (the store refused a batch: {error})"
        self.out.write(f"{path.name}: {applied:,} applied, {kept:,} kept{note}\n")

    def _keep_whole(self, path: Path, collection: str, why: str) -> None:
        with path.open("rb") as file:
            lines = sum(1 for line in file if line.strip())
        self.kept += lines
        self.incomplete.add(collection)
        self.out.write(f"{path.name}: 0 applied, {lines:,} kept ({why})\n")

    def _apply_file(self, path: Path, collection: str) -> tuple[int, int, str | None]:
        """Apply a file in batches; keep in it only the lines not applied.

        Return the lines applied, the lines kept, and the store's error if it
        refused a batch (that batch and every line after it are kept).
        """
        _, partial = parse_name(path)
        natural_key = COLLECTIONS[collection].natural_key
        size = self.rows_batch_size if COLLECTIONS[collection].rows else self.batch_size
        applied, error = 0, None
        with path.open("rb") as file, _KeptLines(path) as kept:
            lines = enumerate(file, start=1)
            for batch in self._batches(lines, size, natural_key, kept):
                documents = [Upsert(document, partial) for _, document in batch]
                try:
                    self.store.write(collection, combined(documents, natural_key))
                except Exception as failure:  # the store's own: sqlite3, OSError, pymongo
                    error = str(failure) or type(failure).__name__
                    kept.extend(line for line, _ in batch)
                    kept.extend(line for _, line in lines)  # the rest, as it is
                    break
                applied += len(batch)
            kept.commit()
        return applied, kept.count, error

    def _batches(
        self,
        lines: Iterator[tuple[int, bytes]],
        size: int,
        natural_key: tuple[str, ...],
        kept: _KeptLines,
    ) -> Iterator[list[tuple[bytes, Document]]]:
        """Yield the good lines with their documents, *size* at a time; keep the bad ones."""
        batch: list[tuple[bytes, Document]] = []
        for number, line in lines:
            if not line.strip():
                continue
            document, reason = _document(line, natural_key)
            if document is None:
                self.bad_lines += 1
                if self.bad_lines <= REPORTED_LINES:
                    self.out.write(f"{kept.path.name}:{number}: kept: {reason}\n")
                kept.extend([line])
                continue
            batch.append((line, document))
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch


def _document(line: bytes, natural_key: tuple[str, ...]) -> tuple[Any, str]:
    """Return a line's document, or None and why it cannot be applied."""
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError:
        try:  # orjson refuses integers beyond 64 bits, which dump_document writes
            document = json.loads(line)
        except ValueError:
            return None, "not JSON"
    if not isinstance(document, dict):
        return None, "not a JSON object"
    for field in natural_key:
        value = document.get(field)
        if value is None:
            return None, f"no {field}"
        if isinstance(value, bool) or not isinstance(value, int | str):
            return None, f"its {field} is not an integer or a string"
    return document, ""


class _KeptLines:
    """The lines of a dead-letter file not applied, written to a temporary file beside it.

    :meth:`commit` replaces the file with them, or deletes it if none were
    kept. Until then the file is untouched: a replay killed half-way leaves it
    whole, and applying its lines again changes nothing.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._file: IO[bytes] | None = None
        self._temporary: Path | None = None

    def extend(self, lines: Iterator[bytes] | list[bytes]) -> None:
        for line in lines:
            if not line.strip():
                continue
            if self._file is None:
                descriptor, name = tempfile.mkstemp(
                    dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
                )
                self._file, self._temporary = os.fdopen(descriptor, "wb"), Path(name)
            self._file.write(line if line.endswith(b"\n") else line + b"\n")
            self.count += 1

    def commit(self) -> None:
        if self._file is None or self._temporary is None:  # set together
            self.path.unlink()
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._temporary, self.path)
        self._temporary = None

    def __enter__(self) -> _KeptLines:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
        if self._temporary is not None:
            self._temporary.unlink(missing_ok=True)
