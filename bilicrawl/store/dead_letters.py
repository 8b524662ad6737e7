"""Dead-letter files: the batches a store refused, as JSON lines to replay later.

A collection's full documents go to ``failed-<collection>.jsonl`` and its
partial ones to ``failed-<collection>.partial.jsonl``, so that a replay merges
what the crawl would have merged (:mod:`bilicrawl.store.replay`).

Settings: ``BILI_DEAD_LETTER_DIR`` (empty: the store's own directory).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bilicrawl.config import ConfigError
from bilicrawl.store.base import check_directory
from bilicrawl.store.documents import dump_document

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

    from bilicrawl.store.base import Store
    from bilicrawl.store.documents import Document


def dead_letter_dir(settings: BaseSettings, store: Store) -> Path:
    """Return ``BILI_DEAD_LETTER_DIR``, or the store's own directory when empty.

    The per-backend settings it replaced are refused by name, so none is ignored silently.
    """
    for old in ("SQLITE_DEAD_LETTER_DIR", "MONGO_DEAD_LETTER_DIR"):
        if settings.get(old):
            raise ConfigError(f"{old} was replaced by BILI_DEAD_LETTER_DIR; set that instead")
    directory = settings.get("BILI_DEAD_LETTER_DIR")
    if directory:
        check_directory("BILI_DEAD_LETTER_DIR", Path(directory))
        return Path(directory)
    return store.dead_letter_dir


def dead_letter_name(collection: str, partial: bool) -> str:
    """The dead-letter file of a collection's full or partial documents."""
    return f"failed-{collection}{'.partial' if partial else ''}.jsonl"


def parse_name(path: Path) -> tuple[str, bool]:
    """Return the collection of a dead-letter file and whether its documents are partial."""
    stem = path.name.removeprefix("failed-").removesuffix(".jsonl")
    partial = stem.endswith(".partial")
    return stem.removesuffix(".partial"), partial


def dead_letter_files(directory: Path) -> list[Path]:
    """The dead-letter files in *directory*, by name."""
    return sorted(path for path in directory.glob("failed-*.jsonl") if path.is_file())


def append_documents(path: Path, documents: list[Document]) -> None:
    """Append documents to a dead-letter file, one JSON line each, creating its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as file:
        file.write("".join(dump_document(document) + "\n" for document in documents))
