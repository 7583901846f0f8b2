"""Editions: the same question in several editions (and languages) of one vendor's FAQ, newest first.

How groups are formed is assistant.linking; this module says what a group shows: which member answers
an asker in their language, what changed between editions, and when a newer edition elsewhere differs.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from assistant.entry import FaqEntry
from assistant.text import API_NAME_RE, content_chars, identifiers

URL_IN_PARENS_RE = re.compile(r"\s*\((https?://[^)]*)\)")
# Two spellings of one word, not a change of the answer.
SPELLING_VARIANTS = (("模版", "模板"),)
CJK_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
ENGLISH_WORD_RE = re.compile(r"[A-Za-z]{2,}")
NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")
LANGUAGE_NAMES = {"zh": "Chinese 中文", "en": "English 英文"}


@dataclass
class EditionGroup:
    id: str
    vendor: str
    members: list[FaqEntry] = field(default_factory=list)  # newest edition first

    @property
    def answer_changed(self) -> bool:
        return any(answer_changed(a, b) for a, b in zip(self.members, self.members[1:]))


def answer_words(answer: str) -> str:
    """The answer's words only: links reduced to their text, spacing and punctuation ignored."""
    return content_chars(URL_IN_PARENS_RE.sub("", answer))


def comparable_answer(answer: str) -> str:
    """The answer's words with spelling variants (模版/模板) folded: what decides whether an answer changed."""
    text = answer_words(answer)
    for variant, spelling in SPELLING_VARIANTS:
        text = text.replace(variant, spelling)
    return text


def is_translation(a: FaqEntry, b: FaqEntry) -> bool:
    return a.language != b.language


def answer_changed(newer: FaqEntry, older: FaqEntry) -> bool:
    """Whether the wording changed; texts in two languages are translations, never compared word by word."""
    if is_translation(newer, older):
        return False
    return comparable_answer(newer.answer) != comparable_answer(older.answer)


def answer_diff(newer: FaqEntry, older: FaqEntry) -> str:
    """A unified diff of two editions' answers, line by line; only a note for a translation."""
    if is_translation(newer, older):
        return (f"translation: {older.edition} ({LANGUAGE_NAMES[older.language]}) and "
                f"{newer.edition} ({LANGUAGE_NAMES[newer.language]}) are not compared line by line")
    return "\n".join(
        difflib.unified_diff(
            older.answer.splitlines(),
            newer.answer.splitlines(),
            fromfile=f"{older.edition} ({older.doc})",
            tofile=f"{newer.edition} ({newer.doc})",
            lineterm="",
        )
    )


def facts(answer: str) -> set[str]:
    """What survives translation: numbers, error codes and API names (links left out)."""
    text = URL_IN_PARENS_RE.sub("", answer)
    return set(NUMBER_RE.findall(text)) | identifiers(text)


def describe_members(group: EditionGroup) -> None:
    """Sets `group` and `editions` on every member."""
    newest = group.members[0]
    for member in group.members:
        member.group = group.id
        member.editions = [
            {
                "id": other.id,
                "doc": other.doc,
                "edition": other.edition,
                "language": other.language,
                "updated": other.updated,
                "answer_changed": answer_changed(newest, other),
                "translation": is_translation(newest, other),
            }
            for other in group.members
        ]


def query_language(text: str) -> str | None:
    """zh for a question with Chinese characters, en for one with English words, None for a bare code or API name."""
    if CJK_RE.search(text):
        return "zh"
    words = ENGLISH_WORD_RE.findall(API_NAME_RE.sub(" ", text))
    return "en" if words else None


@dataclass(frozen=True)
class Pick:
    entry: FaqEntry
    note: str | None = None  # a newer edition in another language, and whether it says something else


def pick_member(members: list[FaqEntry], language: str | None) -> Pick:
    """The member to show an asker of `language`: the newest in that language, else the newest of all.

    `members` are newest first. When a newer edition in another language exists, the note says so,
    and whether its numbers, codes or names differ from the shown text.
    """
    shown = next((m for m in members if m.language == language), members[0])
    newer = members[: members.index(shown)]
    other = next((m for m in newer if m.language != shown.language), None)
    if other is None:
        return Pick(shown)
    differs = facts(other.answer) != facts(shown.answer)
    name = LANGUAGE_NAMES[other.language]
    if differs:
        note = f"a newer edition in {name} ({other.edition}) says something different: check it before quoting"
    else:
        note = f"a newer edition in {name} ({other.edition}) exists"
    return Pick(shown, note)
