"""A small disk for a store to fill: a tmpfs where the tests may mount one."""

from __future__ import annotations

import shutil
import subprocess
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


class SmallDisk:
    """A directory that holds at most about *size* bytes, and can be grown."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.mounted = _mount(path, f"size={size}")
        self.prefix: list[str] = []
        """Without a mount, the command prefix that stops a crawl writing a larger file."""
        if not self.mounted:
            self.prefix = [shutil.which("prlimit") or "prlimit", f"--fsize={size}", "--"]

    def grow(self, size: int) -> None:
        """Give the disk room: a later crawl runs without the limit."""
        if self.mounted:
            _mount(self.path, f"remount,size={size}")
        self.prefix = []


@contextmanager
def small_disk(path: Path, size: int) -> Iterator[SmallDisk]:
    """Yield a :class:`SmallDisk` at *path*: a tmpfs (as root), else a file-size limit."""
    path.mkdir(parents=True, exist_ok=True)
    disk = SmallDisk(path, size)
    try:
        yield disk
    finally:
        if disk.mounted:
            subprocess.run([_tool("umount"), "-l", str(path)], check=False)  # noqa: S603


def _tool(name: str) -> str:
    return shutil.which(name) or f"/usr/bin/{name}"


def _mount(path: Path, options: str) -> bool:
    result = subprocess.run(  # noqa: S603
        [_tool("mount"), "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0
