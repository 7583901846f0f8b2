"""Query expansion vocabulary: the bilingual SMS glossary (corpus/glossary.tsv, English ↔ Chinese) and the
vendors' error codes with their meanings (corpus/error_codes.tsv)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assistant.error_codes import ErrorCodes
from assistant.phrases import PhraseMatcher
from assistant.tokenize import normalize
from assistant.tsv import alternatives, read_rows


@dataclass(frozen=True)
class GlossaryRow:
    english: tuple[str, ...]
    chinese: tuple[str, ...]

    @property
    def terms(self) -> tuple[str, ...]:
        return self.english + self.chinese


class Glossary:
    def __init__(self, rows: list[GlossaryRow], codes: ErrorCodes | None = None) -> None:
        self.rows = rows
        self.codes = codes or ErrorCodes([])
        self._matcher = PhraseMatcher([(row, row.terms) for row in rows])

    @classmethod
    def from_settings(cls, settings) -> "Glossary":
        return cls.load(settings.glossary_path, ErrorCodes.load(settings.error_codes_path))

    @classmethod
    def load(cls, path: Path, codes: ErrorCodes | None = None) -> "Glossary":
        rows = [GlossaryRow(alternatives(english), alternatives(chinese))
                for english, chinese in read_rows(path, (2,), "English and Chinese terms")]
        return cls(rows, codes)

    @property
    def chinese_terms(self) -> list[str]:
        return [term for row in self.rows for term in row.chinese]

    def expansions(self, query: str) -> list[str]:
        """Terms of every row the query mentions (in either language), not already in the query."""
        folded = normalize(query)
        added: list[str] = []
        for row in self._matcher.matching(folded):
            added.extend(t for t in row.terms if normalize(t) not in folded and t not in added)
        return added
