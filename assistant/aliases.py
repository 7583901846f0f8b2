"""Search keys (corpus/aliases.tsv): questions an entry answers, phrased as customers ask them, in Chinese and English.

Keyed by edition group, so every edition of the question shares them. They are searched like the
entry's own question (a dense vector each, and BM25 text) and never shown or quoted. An entry
without keys is searched by its own text only.
"""

from __future__ import annotations

from pathlib import Path

from assistant.entry import FaqEntry
from assistant.errors import CorpusError


class Aliases:
    def __init__(self, keys: dict[str, tuple[str, ...]]) -> None:
        self._keys = keys

    @classmethod
    def load(cls, path: Path) -> "Aliases":
        if not path.exists():
            return cls({})
        keys: dict[str, tuple[str, ...]] = {}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#") or line.startswith("group\t"):
                continue
            columns = line.split("\t")
            english = tuple(k.strip() for k in columns[1].split("|") if k.strip()) if len(columns) >= 2 else ()
            if len(columns) not in (2, 3) or not columns[0].strip() or not english:
                raise CorpusError(f"{path}:{number}: expected a group id, search keys and optionally the question, "
                                  "tab-separated")
            keys[columns[0].strip()] = english
        return cls(keys)

    def of(self, entry: FaqEntry) -> tuple[str, ...]:
        return self._keys.get(entry.group or entry.id, ())

    def first(self, count: int | None) -> "Aliases":
        """Each group's first `count` keys (all when None): a large store searches fewer keys an entry."""
        return self if count is None else Aliases({group: keys[:count] for group, keys in self._keys.items()})

    def __len__(self) -> int:
        return len(self._keys)
