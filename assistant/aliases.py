"""Search keys (corpus/aliases.tsv): questions an entry answers, phrased as customers ask them, in Chinese and English.

Keyed by edition group, so every edition of the question shares them. They are searched like the
entry's own question (a dense vector each, and BM25 text) and never shown or quoted. An entry
without keys is searched by its own text only.
"""

from __future__ import annotations

from pathlib import Path

from assistant.entry import FaqEntry
from assistant.tsv import alternatives, read_rows


class Aliases:
    def __init__(self, keys: dict[str, tuple[str, ...]]) -> None:
        self._keys = keys

    @classmethod
    def load(cls, path: Path) -> "Aliases":
        return cls({columns[0]: alternatives(columns[1])
                    for columns in read_rows(path, (2, 3), "a group id, search keys and optionally the question")})

    def of(self, entry: FaqEntry) -> tuple[str, ...]:
        return self._keys.get(entry.group or entry.id, ())

    def first(self, count: int | None) -> "Aliases":
        """Each group's first `count` keys (all when None): a large store searches fewer keys an entry."""
        return self if count is None else Aliases({group: keys[:count] for group, keys in self._keys.items()})

    def __len__(self) -> int:
        return len(self._keys)
