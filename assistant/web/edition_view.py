"""How one edition's answer differs from the answer shown: a relation label and a word-level diff.

The diff is one wrapped block in the shown answer's reading order: unchanged lines plain, a changed
line once with its changed characters struck out / inserted in place, whole lines only when a line is
new or gone. List numbering is not compared ("1." vs "1、", or steps renumbered after an insertion).
"""

from __future__ import annotations

import difflib
import html
import re

from assistant.editions import answer_words, comparable_answer
from assistant.entry import FaqEntry
from assistant.web.answer_text import plain_answer
from assistant.web.labels import LABELS

SPELLING_ONLY = 0.03  # at most this share of the answer's characters changed, one or two at a time
SAME_LINE = 0.5  # two lines this similar are one line changed, not one removed and one added
NUMBERING_RE = re.compile(r"^\s*(\d{1,2})\s*[、.．)）]\s*")
MEANINGFUL = ("changed", "spelling")  # relations under which an agent must choose which edition to quote


def edition_relation(shown: FaqEntry, other: FaqEntry) -> str:
    """How `other`'s answer differs from the answer shown: translation, same, punctuation, spelling or changed."""
    if shown.language != other.language:
        return "translation"  # two languages are never compared line by line
    if shown.answer.strip() == other.answer.strip():
        return "same"
    a, b = answer_words(shown.answer), answer_words(other.answer)
    if a == b:
        return "punctuation"
    if comparable_answer(shown.answer) == comparable_answer(other.answer):
        return "spelling"
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    edits = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    small = all(tag == "replace" and i2 - i1 == j2 - j1 <= 2 for tag, i1, i2, j1, j2 in edits)
    changed = sum(i2 - i1 for _, i1, i2, _, _ in edits)
    return "spelling" if small and changed <= SPELLING_ONLY * max(len(a), 1) else "changed"


def newest_dated(shown: FaqEntry, entries: dict[str, FaqEntry]) -> FaqEntry | None:
    """The edition to quote when the editions' answers differ: the newest one that prints a date."""
    members = [shown] + [entries[e["id"]] for e in shown.editions if e["id"] != shown.id and e["id"] in entries]
    if not any(edition_relation(shown, other) in MEANINGFUL for other in members[1:]):
        return None
    dated = [m for m in members if m.updated and m.language == shown.language]
    return max(dated, key=lambda m: m.updated) if dated else None


def _split_number(line: str) -> tuple[str, str]:
    match = NUMBERING_RE.match(line)
    return (f"{match.group(1)}. ", line[match.end():]) if match else ("", line.strip())


def _inline(old: str, new: str) -> str:
    """`new` with the characters `old` had instead struck out and its own marked as inserted."""
    parts = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            parts.append(html.escape(new[j1:j2]))
            continue
        if i2 > i1:
            parts.append(f"<del>{html.escape(old[i1:i2])}</del>")
        if j2 > j1:
            parts.append(f"<ins>{html.escape(new[j1:j2])}</ins>")
    return "".join(parts)


def _aligned(old: list[str], new: list[str]) -> list[tuple[int | None, int | None]]:
    """Pairs of (old line, new line) indexes in reading order; None where a line is only on one side."""
    pairs: list[tuple[int | None, int | None]] = []
    next_new = 0
    for i, line in enumerate(old):
        match = next((k for k in range(next_new, len(new))
                      if difflib.SequenceMatcher(None, line, new[k], autojunk=False).ratio() >= SAME_LINE), None)
        if match is None:
            pairs.append((i, None))
            continue
        pairs += [(None, k) for k in range(next_new, match)]
        pairs.append((i, match))
        next_new = match + 1
    return pairs + [(None, k) for k in range(next_new, len(new))]


def diff_html(shown: FaqEntry, other: FaqEntry, lang: str) -> str:
    """From `other`'s answer to the answer shown, in one block."""
    labels = LABELS[lang]
    old = [_split_number(line) for line in plain_answer(other.answer).splitlines() if line.strip()]
    new = [_split_number(line) for line in plain_answer(shown.answer).splitlines() if line.strip()]
    rows = []
    for i, j in _aligned([body for _, body in old], [body for _, body in new]):
        if i is None:
            rows.append(f'<div class="faq-line-add" title="{labels["added"]}">+ {html.escape("".join(new[j]))}</div>')
        elif j is None:
            rows.append(f'<div class="faq-line-del" title="{labels["removed"]}">− {html.escape("".join(old[i]))}'
                        f'</div>')
        elif old[i][1] == new[j][1]:
            rows.append(f'<div class="faq-line-same">{html.escape("".join(new[j]))}</div>')
        else:
            rows.append(f'<div class="faq-line-changed">{html.escape(new[j][0])}{_inline(old[i][1], new[j][1])}</div>')
    legend = (f'<div class="faq-legend"><del>{labels["removed"]}</del> <ins>{labels["added"]}</ins></div>')
    return f'<div class="faq-diff">{legend}{"".join(rows)}</div>'
