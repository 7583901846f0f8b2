"""Asking the kernel to read a build's files into the page cache when a server opens it (as Elasticsearch's
`index.store.preload` does): the first searches after a start or a build then find the inverted file's codes,
the BM25 postings and the entries' evidence in memory instead of faulting them in from disk one page at a
time. Advice only: nothing enters the process's resident set, and the kernel drops the pages under pressure.
The vector files are left out: they are read a few rows at a time (assistant/stores/vector_file.py) and at
1M entries hold 27 GB.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

ROW_BY_ROW = "vectors.npy"  # files whose names end so are vector files, read row by row
CHUNK = 8 << 20  # bytes per advice: Linux reads at most this much ahead for one (a whole-file advice reads 8 MiB)


def preloaded(folder: Path) -> list[Path]:
    """The build's files a server reads whole or scans: all but the vector files, largest last."""
    files = [p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(ROW_BY_ROW)]
    return sorted(files, key=lambda p: p.stat().st_size)


def preload(paths: Iterable[Path]) -> threading.Thread:
    """Advise the kernel to read `paths` ahead, from a background thread (a server's startup does not wait)."""
    paths = list(paths)

    def advise() -> None:
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue  # a file replaced since: the store's own checks report it
            try:
                for offset in range(0, os.fstat(fd).st_size, CHUNK):
                    os.posix_fadvise(fd, offset, CHUNK, os.POSIX_FADV_WILLNEED)
            except OSError:
                pass  # advice the file system does not take
            finally:
                os.close(fd)

    thread = threading.Thread(target=advise, name="preload", daemon=True)
    thread.start()
    return thread
