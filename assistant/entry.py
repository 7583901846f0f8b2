"""The FAQ entry: one question, its answer, and where both come from."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Source:
    path: str  # relative to the corpus directory
    line_start: int
    line_end: int
    url: str | None = None
    # The entry's lines when they are not contiguous (scrambled PDF export).
    spans: tuple[tuple[int, int], ...] = ()

    def to_json(self) -> dict:
        data = {
            "path": self.path,
            "line_start": self.line_start,
            "line_end": self.line_end,
            "url": self.url,
        }
        if self.spans:
            data["spans"] = [list(span) for span in self.spans]
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Source":
        return cls(
            path=data["path"],
            line_start=data["line_start"],
            line_end=data["line_end"],
            url=data.get("url"),
            spans=tuple(tuple(span) for span in data.get("spans", ())),
        )


@dataclass
class FaqEntry:
    id: str
    vendor: str
    vendor_name: str
    product: str
    doc: str
    edition: str
    updated: str | None  # ISO date printed by the document, never guessed
    section: str | None
    question: str
    answer: str
    source: Source
    flags: tuple[str, ...] = ()
    # How the answer was attached to the question (scrambled exports only).
    placement: tuple[str, ...] = ()
    group: str | None = None
    editions: list[dict] = field(default_factory=list)
    language: str = "zh"  # of the edition: zh or en

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "group": self.group,
            "vendor": self.vendor,
            "vendor_name": self.vendor_name,
            "product": self.product,
            "doc": self.doc,
            "edition": self.edition,
            "language": self.language,
            "updated": self.updated,
            "section": self.section,
            "question": self.question,
            "answer": self.answer,
            "source": self.source.to_json(),
            "flags": list(self.flags),
            "placement": list(self.placement),
            "editions": self.editions,
        }

    @classmethod
    def from_json(cls, data: dict) -> "FaqEntry":
        fields = {k: v for k, v in data.items() if k not in ("source", "flags", "placement")}
        return cls(
            **fields,
            source=Source.from_json(data["source"]),
            flags=tuple(data.get("flags", ())),
            placement=tuple(data.get("placement", ())),
        )


def stable_id(*parts: str, length: int = 10) -> str:
    """A short hash of the parts: the same input gives the same id on every machine."""
    digest = hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:length]
