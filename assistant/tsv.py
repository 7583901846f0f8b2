"""The project's hand-kept data tables (corpus/*.tsv): tab-separated rows, '#' comments and a header row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from assistant.errors import CorpusError


def read_rows(path: Path, widths: tuple[int, ...], expected: str) -> Iterator[list[str]]:
    """Each data row's stripped columns; a table that does not exist has none.

    The first row that is not a comment is the header. A row of another width, or with an empty column among
    the first min(widths), is a CorpusError naming file:line and `expected` (what a row holds).
    """
    if not path.exists():
        return
    header_seen = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if not header_seen:
            header_seen = True
            continue
        columns = [column.strip() for column in line.split("\t")]
        if len(columns) not in widths or not all(columns[:min(widths)]):
            raise CorpusError(f"{path}:{number}: expected {expected}, tab-separated; got {len(columns)} columns")
        yield columns


def alternatives(column: str) -> tuple[str, ...]:
    """The '|'-separated phrases of one column."""
    return tuple(phrase.strip() for phrase in column.split("|") if phrase.strip())
