"""``scrapy replay-dead-letters [DIR]``: apply the dead letters of a failed store.

A crawl whose store failed left its batches in ``failed-*.jsonl`` files; once
the store works again this applies them to the store the project settings name
(``BILI_STORE_URI``), exactly as the crawl would have written them
(:mod:`bilicrawl.store.replay`). The module is named after the command, as
Scrapy names commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy.commands import ScrapyCommand

from bilicrawl.config import ConfigError
from bilicrawl.extensions.summary import USAGE
from bilicrawl.store.replay import replay_dead_letters

if TYPE_CHECKING:
    import argparse


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False

    def syntax(self) -> str:
        return "[DIR]"

    def short_desc(self) -> str:
        return "Apply dead-letter files (failed-*.jsonl) to the store, removing what was applied"

    def long_desc(self) -> str:
        return (
            "Apply the dead-letter files in DIR (default: BILI_DEAD_LETTER_DIR, or where the"
            " crawl puts them) to the store the settings name, full documents as replacements"
            " and .partial.jsonl ones as merges. Applied lines are removed from their file."
            " Exit status: 0 when everything was applied, 1 when some lines were kept, 2 for"
            " a bad invocation."
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) > 1:
            self._fail(f"give at most one directory, not {len(args)} arguments: {args}")
            return
        if self.settings is None:
            raise RuntimeError("scrapy sets a command's settings before running it")
        try:
            self.exitcode = replay_dead_letters(self.settings, Path(args[0]) if args else None)
        except ConfigError as error:
            self._fail(str(error))

    def _fail(self, message: str) -> None:
        self.exitcode = USAGE
        sys.stderr.write(f"scrapy replay-dead-letters: error: {message}\n")
