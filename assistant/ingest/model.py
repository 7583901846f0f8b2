"""What a parser returns before provenance and ids are attached."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ParsedEntry:
    question: str
    answer: str
    line_start: int
    line_end: int
    section: str | None = None
    updated: str | None = None
    spans: tuple[tuple[int, int], ...] = ()
    flags: tuple[str, ...] = ()
    placement: tuple[str, ...] = ()
    anchor: str | None = None  # the question's anchor on the vendor's page, where the format has one
