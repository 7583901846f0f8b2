"""Editions: the same question in several editions of one vendor's FAQ, newest first."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assistant.entry import FaqEntry, stable_id
from assistant.similarity import question_similarity, topic_text
from assistant.text import bigrams, content_chars, dice

if TYPE_CHECKING:
    from assistant.ingest.manifest import Manifest

SAME_QUESTION = 0.6
# A weaker question match is accepted when the answers agree this much.
RELATED_QUESTION = 0.4
SAME_ANSWER = 0.5
URL_IN_PARENS_RE = re.compile(r"\s*\((https?://[^)]*)\)")


@dataclass
class EditionGroup:
    id: str
    vendor: str
    members: list[FaqEntry] = field(default_factory=list)  # newest edition first

    @property
    def answer_changed(self) -> bool:
        return any(answer_changed(a, b) for a, b in zip(self.members, self.members[1:]))


def comparable_answer(answer: str) -> str:
    """The answer's words only: links reduced to their text, spacing and punctuation ignored."""
    return content_chars(URL_IN_PARENS_RE.sub("", answer))


def answer_changed(newer: FaqEntry, older: FaqEntry) -> bool:
    return comparable_answer(newer.answer) != comparable_answer(older.answer)


def answer_diff(newer: FaqEntry, older: FaqEntry) -> str:
    """A unified diff of two editions' answers, line by line."""
    return "\n".join(
        difflib.unified_diff(
            older.answer.splitlines(),
            newer.answer.splitlines(),
            fromfile=f"{older.edition} ({older.doc})",
            tofile=f"{newer.edition} ({newer.doc})",
            lineterm="",
        )
    )


def _match_score(entry: FaqEntry, group: EditionGroup) -> float:
    best = 0.0
    for member in group.members:
        asked = question_similarity(entry.question, member.question)
        if asked < SAME_QUESTION:
            answered = dice(bigrams(entry.answer), bigrams(member.answer))
            asked = asked if asked >= RELATED_QUESTION and answered >= SAME_ANSWER else 0.0
        best = max(best, asked)
    return best


def link_editions(entries: list[FaqEntry], manifest: "Manifest") -> list[EditionGroup]:
    """Sets `group` and `editions` on every entry; returns the groups."""
    groups: list[EditionGroup] = []
    for vendor in manifest.vendors.values():
        vendor_groups: list[EditionGroup] = []
        for doc_id in vendor.editions:  # newest first: the newest wording names the group
            edition_entries = [e for e in entries if e.doc == doc_id]
            pairs = sorted(
                (
                    (score, i, j)
                    for i, entry in enumerate(edition_entries)
                    for j, group in enumerate(vendor_groups)
                    if (score := _match_score(entry, group)) >= RELATED_QUESTION
                ),
                reverse=True,
            )
            taken_entries: set[int] = set()
            taken_groups: set[int] = set()
            for _, i, j in pairs:
                if i in taken_entries or j in taken_groups:
                    continue
                taken_entries.add(i)
                taken_groups.add(j)
                vendor_groups[j].members.append(edition_entries[i])
            for i, entry in enumerate(edition_entries):
                if i not in taken_entries:
                    group_id = "g-" + stable_id(vendor.slug, topic_text(entry.question), entry.doc)
                    vendor_groups.append(EditionGroup(group_id, vendor.slug, [entry]))
        groups.extend(vendor_groups)
    for group in groups:
        newest = group.members[0]
        for member in group.members:
            member.group = group.id
            member.editions = [
                {
                    "id": other.id,
                    "doc": other.doc,
                    "edition": other.edition,
                    "updated": other.updated,
                    "answer_changed": answer_changed(newest, other),
                }
                for other in group.members
            ]
    return groups
