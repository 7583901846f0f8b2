"""Which labelled phrase lists (glossary rows, decisive concepts) a query mentions, without running every regex.

Each label has one pattern over its phrases (case- and width-folded; ASCII phrases bounded by non-word
characters, so "sign" is not found in "signature"). A pattern can only match where one of its phrases
occurs as plain text, so a substring check first (phrases indexed by their first character) leaves the
few labels worth a regex search.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Generic, TypeVar

from assistant.tokenize import normalize

Label = TypeVar("Label")


class PhraseMatcher(Generic[Label]):
    def __init__(self, labelled: Sequence[tuple[Label, Sequence[str]]]) -> None:
        self._labels = [label for label, _ in labelled]
        self._patterns = [re.compile("|".join(_pattern(p) for p in phrases)) for _, phrases in labelled]
        self._by_first_char: dict[str, list[tuple[str, int]]] = {}
        for position, (_, phrases) in enumerate(labelled):
            for phrase in phrases:
                folded = normalize(phrase)
                self._by_first_char.setdefault(folded[0], []).append((folded, position))

    def matching(self, folded: str) -> list[Label]:
        """The labels (in their order) with a phrase in `folded` (a text already passed through `normalize`)."""
        present = {position for char in set(folded) for phrase, position in self._by_first_char.get(char, ())
                   if phrase in folded}
        return [self._labels[p] for p in sorted(present) if self._patterns[p].search(folded)]


def _pattern(phrase: str) -> str:
    folded = re.escape(normalize(phrase))
    return rf"(?<![a-z0-9]){folded}(?![a-z0-9])" if phrase.isascii() else folded
