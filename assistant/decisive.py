"""Decisive words (corpus/decisive.tsv): concepts that exclude each other within a facet, and what a query asks for."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from assistant.phrases import PhraseMatcher
from assistant.tokenize import normalize
from assistant.tsv import alternatives, read_rows

ASK_FACET = "ask"  # rows naming the kind of answer a query asks for (an amount): never compared as concepts


class Concept(NamedTuple):
    facet: str
    name: str


class DecisiveWords:
    def __init__(self, rows: list[tuple[str, str, tuple[str, ...]]]) -> None:
        self._matcher = PhraseMatcher([(Concept(facet, name), phrases) for facet, name, phrases in rows
                                       if facet != ASK_FACET])
        self._asks = PhraseMatcher([(name, phrases) for facet, name, phrases in rows if facet == ASK_FACET])

    @classmethod
    def load(cls, path: Path) -> "DecisiveWords":
        return cls([(facet, concept, alternatives(phrases))
                    for facet, concept, phrases in read_rows(path, (3,), "facet, concept and phrases")])

    def concepts(self, text: str) -> frozenset[Concept]:
        return frozenset(self._matcher.matching(normalize(text)))

    def asks(self, text: str) -> frozenset[str]:
        """The kinds of answer the text asks for ("amount" for 多少钱, 几天, how long, limit…)."""
        return frozenset(self._asks.matching(normalize(text)))


def compare(query: frozenset[Concept], question: frozenset[Concept], answer: frozenset[Concept]) -> tuple[int, int, int, list[str]]:
    """(agreeing facets, conflicting facets, query concepts the entry never mentions, their names)."""
    if not query:
        return 0, 0, 0, []
    agree = conflict = 0
    offered_by_facet = by_facet(question)
    for facet, asked in by_facet(query).items():
        offered = offered_by_facet.get(facet)
        if offered is None:
            continue
        if asked.isdisjoint(offered):
            conflict += 1
        else:
            agree += 1
    missing = [concept.name for concept in query if concept not in question and concept not in answer]
    return agree, conflict, len(missing), sorted(missing)


@lru_cache(maxsize=16384)
def by_facet(concepts: frozenset[Concept]) -> dict[str, frozenset[Concept]]:
    """The concepts of each facet (a query's, an entry question's: compared with many)."""
    grouped: dict[str, set[Concept]] = {}
    for concept in concepts:
        grouped.setdefault(concept.facet, set()).add(concept)
    return {facet: frozenset(found) for facet, found in grouped.items()}
