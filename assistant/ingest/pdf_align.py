"""Pairing questions with their answers in a scrambled two-column PDF export.

Inside a page block the export wrote two streams one after the other: first
the plain paragraphs of the page (the "lead" stream), then the headings with
the list items that followed them. Each stream keeps the page order, so the
lead paragraphs belong to the block's questions in the same order — a
monotone alignment — except that the first paragraphs may continue the
previous block's last question, and the block may end with the rest of that
question's list before its own first heading (the "tail").

The alignment maximises, by dynamic programming, the evidence that each lead
paragraph belongs to its question:
- edition: the paragraph is found in the same question's answer in another edition;
- content: it shares distinctive words or an error code with the question or
  with the text that follows the question;
- structure: the order constraint itself, and that a question with no
  text of its own under it is owed one.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from assistant.ingest.model import ParsedEntry
from assistant.text import bigrams, containment, content_chars, dice, identifiers
from assistant.similarity import question_similarity, topic_text

if TYPE_CHECKING:
    from assistant.ingest.pdf_meaning import MeaningScorer
    from assistant.ingest.pdf_text import Block, Unit

SAME_QUESTION = 0.6  # question_similarity at which another edition's entry is the same question
# Other editions only break ties: their weight is far below any real difference in evidence,
# so adding or removing a document never moves a paragraph the page itself places.
EDITION_TIE_BREAK = 1e-3
# Meaning: cosine of question (query role) and paragraph (passage role), centred over the block's
# candidates in both directions, so neither a generic paragraph nor a generic question dominates.
MEANING_WEIGHT = 30.0
MEANING_EVIDENCE = 0.3
NOTE_PREFIXES = ("说明：", "注意：", "注：")
NOTE_MEANING_SHARE = 0.25
# A question with no text of its own on its page is owed a paragraph: passing it over costs this much.
SKIPPED_OWED_PENALTY = 3.0
# The previous page's answer stopped at "…如下：": the text it announces opens this page or ends it.
DANGLING_INTRO_BONUS = 1.0
EXAMPLE_PREFIXES = ("示例：", "示例:")
ANNOUNCING_ENDINGS = ("如下表所示。", "如下图所示。", "如下所示。")
LABEL_RE = re.compile(r"^([^：:，。]{1,12})[：:]")
CLOSING_SWITCH_PENALTY = 0.5  # "更多详情请参见…" closes the answer before it rather than opening one
AFTER_CLOSING_PENALTY = 2.0  # the vendor's "如有任何疑问…" footer ends an answer  # "更多详情请参见…" closes the answer before it rather than opening one
QUESTION_WEIGHT = 0.8
FOLLOWING_WEIGHT = 0.6
IDENTIFIER_WEIGHT = 1.0
OWED_ANSWER_BONUS = 0.35
# A question that got no text at all on its page is answered at the top of the next one.
OWED_CONTINUED_BONUS = 1.0
STAY_BONUS = 0.2  # consecutive paragraphs more often share a question than not
LIST_BREAK_PENALTY = 1.0  # "2.2" then "2.3" belong to one answer
LIST_RESTART_PENALTY = 0.5  # a second list starting at "1." rarely continues an answer
DUPLICATE_PENALTY = 1.0  # an answer does not say the same long sentence twice
DUPLICATE_DICE = 0.7
DUPLICATE_CONTAINED = 0.8  # or said already, spread over several of its paragraphs
INTRO_WITHOUT_BODY_PENALTY = 0.5  # "…如下：" must be followed by what it introduces
DUPLICATE_MIN_CHARS = 20
LIST_NUMBER_RE = re.compile(r"^\s*(\d+(?:\.\d+)*)[.、]?\s")
EDITION_EVIDENCE = 0.5
CONTENT_EVIDENCE = 0.25
CLOSING_RE = re.compile(r"^(?:\d+[.、]\s*)?(更多|详细|详情|如仍|如有|如需|如果还是|如果仍|如果以上)")


@dataclass(frozen=True)
class Reference:
    """The same vendor's entry in another edition."""

    question: str
    answer: str


@dataclass(frozen=True)
class _Evidence:
    """What speaks for one paragraph belonging to one question, kept to name it in `placement`."""

    content: float = 0.0  # shared words and codes
    edition: float = 0.0  # containment in the same question's answer in another edition
    meaning: float = 0.0  # the embedder's preference for this question over the block's others

    def with_meaning(self, meaning: float) -> "_Evidence":
        return _Evidence(self.content, self.edition, meaning)

    @property
    def tags(self) -> tuple[str, ...]:
        """The evidence that decided ('meaning', 'content' or 'structure'), and whether another edition agrees."""
        if self.meaning >= MEANING_EVIDENCE and self.meaning >= self.content:
            decided = "meaning"
        elif self.content >= CONTENT_EVIDENCE:
            decided = "content"
        else:
            decided = "structure"
        return (decided, "edition-confirmed") if self.edition >= EDITION_EVIDENCE else (decided,)


@dataclass
class _Part:
    unit: "Unit"
    role: str  # lead | follows | continued
    evidence: tuple[str, ...]


@dataclass
class _Question:
    unit: "Unit"
    section: str
    updated: str | None
    references: list[set[str]]
    parts: list[_Part] = field(default_factory=list)

    @property
    def text_so_far(self) -> str:
        return "\n".join(part.unit.text for part in self.parts)

    @property
    def has_text(self) -> bool:
        return bool(self.parts)


def align_document(
    blocks: list["Block"], references: list[Reference], meaning: "MeaningScorer | None" = None
) -> list[ParsedEntry]:
    idf = _inverse_document_frequency([unit.text for block in blocks for unit in block.units])
    questions: list[_Question] = []
    open_question: _Question | None = None
    pending: list["Unit"] = []
    for block in blocks:
        first = next((i for i, unit in enumerate(block.units) if unit.is_question), None)
        lead = pending + block.units[: len(block.units) if first is None else first]
        pending = []
        block_questions: list[_Question] = []
        for unit in block.units[len(block.units) if first is None else first :]:
            if unit.is_question:
                block_questions.append(
                    _Question(unit, block.section, block.updated, _references_for(unit.text, references))
                )
            else:
                block_questions[-1].parts.append(_Part(unit, "follows", ("follows-question",)))
        continued = None if block.opens_section else open_question
        if not block_questions and continued is None:
            pending = lead  # text before any question: it leads the next block's questions
            continue
        _assign(lead, continued, block_questions, idf, meaning)
        questions.extend(block_questions)
        open_question = block_questions[-1] if block_questions else continued
    return [_to_entry(question) for question in questions]


def _references_for(question: str, references: list[Reference]) -> list[set[str]]:
    return [
        bigrams(ref.answer)
        for ref in references
        if question_similarity(question, ref.question) >= SAME_QUESTION
    ]


def _inverse_document_frequency(texts: list[str]) -> dict[str, float]:
    frequency = Counter(gram for text in texts for gram in bigrams(text))
    total = len(texts) or 1
    return {gram: math.log(1 + total / count) for gram, count in frequency.items()}


def _weighted_share(part: set[str], whole: set[str], idf: dict[str, float]) -> float:
    weight = sum(idf.get(gram, 1.0) for gram in part)
    if not weight:
        return 0.0
    return sum(idf.get(gram, 1.0) for gram in part & whole) / weight


def _evidence(unit: "Unit", question: _Question, idf: dict[str, float]) -> tuple[float, str]:
    """Score for `unit` belonging to `question`, and the kind of evidence that dominated."""
    unit_grams = bigrams(unit.text)
    best_containment = 0.0
    if question.references:
        best_containment = max(containment(unit_grams, ref) for ref in question.references)
    edition = EDITION_TIE_BREAK * best_containment
    asked = _weighted_share(bigrams(topic_text(question.unit.text)), unit_grams, idf)
    following = _weighted_share(unit_grams, bigrams(question.text_so_far), idf)
    unit_ids = identifiers(unit.text)
    question_ids = identifiers(question.unit.text)
    shared = bool(unit_ids & (question_ids | identifiers(question.text_so_far)))
    conflict = bool(unit_ids and question_ids and not unit_ids & question_ids)
    content = QUESTION_WEIGHT * asked + FOLLOWING_WEIGHT * following
    content += IDENTIFIER_WEIGHT * (shared - conflict)
    if _is_bare_intro(unit.text) and question.parts and question.parts[-1].unit.text.endswith("："):
        content -= INTRO_WITHOUT_BODY_PENALTY  # two introductions in a row, nothing introduced
    label = LABEL_RE.match(unit.text)
    if label and any(label.group(1) == _label(part.unit.text) for part in question.parts):
        content -= DUPLICATE_PENALTY  # a second "国内短信：" item: the answer already has its own
    if len(content_chars(unit.text)) >= DUPLICATE_MIN_CHARS and (
        any(dice(unit_grams, bigrams(part.unit.text)) >= DUPLICATE_DICE for part in question.parts)
        or containment(unit_grams, bigrams(question.text_so_far)) >= DUPLICATE_CONTAINED
    ):
        content -= DUPLICATE_PENALTY
    return edition + content, _Evidence(content=content, edition=best_containment)


def _cannot_take_announcement(index: int, question: _Question, count: int) -> bool:
    """Where an announcement ('…如下表所示。') whose body is not beside it cannot go.

    Its body is the list a question has under its heading on this page, or the next page
    (for the block's last question). Not the previous page's question, not a question
    with nothing of its own, not one whose list already opens with its own announcement.
    """
    follows = [part for part in question.parts if part.role == "follows"]
    if index == 0:
        return True
    if follows:
        return _ends_in_intro(follows[0].unit.text)
    return index != count - 1


def _is_bare_intro(text: str) -> bool:
    """'…如下：' on its own, not a list item ('国内短信：… 如下图所示：', '2.2 …：')."""
    return text.endswith("：") and not LABEL_RE.match(text) and list_number(text) is None


def _label(text: str) -> str | None:
    match = LABEL_RE.match(text)
    return match.group(1) if match else None


def list_number(text: str) -> tuple[int, ...] | None:
    match = LIST_NUMBER_RE.match(text)
    return tuple(int(n) for n in match.group(1).split(".")) if match else None


def _follows_in_list(previous: tuple[int, ...] | None, current: tuple[int, ...] | None) -> bool:
    """'1.' → '1.1', '1.1' → '1.2', '1.2' → '2.': the next item of the same list."""
    if not previous or not current:
        return False
    if current == previous + (1,):
        return True
    return any(current == previous[:level] + (previous[level] + 1,) for level in range(len(previous)))


def _inside_lists(lead: list["Unit"], continued: _Question | None) -> list[bool]:
    """For each lead position: would starting a new question there break a numbered list?"""
    inside = [False] * len(lead)
    previous_index, previous_number = -1, None
    if continued and continued.parts:
        previous_number = list_number(continued.parts[-1].unit.text)
    for index, unit in enumerate(lead):
        number = list_number(unit.text)
        if number is None:
            continue
        if _follows_in_list(previous_number, number):
            for position in range(previous_index + 1, index + 1):
                inside[position] = True
        previous_index, previous_number = index, number
    return inside


def _introduces_text_elsewhere(lead: list["Unit"], position: int) -> bool:
    """A paragraph announcing a list or table ('…如下：') whose body is not the lead paragraph after it."""
    if not _ends_in_intro(lead[position].text):
        return False
    following = lead[position + 1].text if position + 1 < len(lead) else ""
    return not _follows_in_list(list_number(lead[position].text), list_number(following))


def _meaning(lead: list["Unit"], candidates: list[_Question | None], meaning: "MeaningScorer | None"):
    """Per (paragraph, candidate): how much better it answers this question than the block's others."""
    present = [index for index, q in enumerate(candidates) if q is not None]
    centred = np.zeros((len(lead), len(candidates)))
    if meaning is None or len(present) < 2:
        return centred
    similarity = meaning.similarity([candidates[i].unit.text for i in present], [unit.text for unit in lead])
    similarity = similarity - similarity.mean(axis=1, keepdims=True)
    similarity = similarity - similarity.mean(axis=0, keepdims=True)
    centred[:, present] = similarity
    return centred


def _assign(
    lead: list["Unit"],
    continued: _Question | None,
    questions: list[_Question],
    idf: dict[str, float],
    meaning: "MeaningScorer | None" = None,
) -> None:
    if not lead:
        return
    candidates: list[_Question | None] = [continued, *questions]
    if not questions:
        for unit in lead:
            continued.parts.append(_Part(unit, "continued", ("structure",)))
        return
    scores = [[_evidence(unit, q, idf) if q else (float("-inf"), _Evidence()) for q in candidates] for unit in lead]
    centred = _meaning(lead, candidates, meaning)
    for position, row in enumerate(scores):
        for index, (value, kind) in enumerate(row):
            if candidates[index] is None:
                continue
            extra = MEANING_WEIGHT * float(centred[position, index])
            if lead[position].text.startswith(NOTE_PREFIXES):
                extra *= NOTE_MEANING_SHARE  # a caveat's wording says little about what it qualifies
            row[index] = (value + extra, kind.with_meaning(extra))
    for position, unit in enumerate(lead):
        if _introduces_text_elsewhere(lead, position):
            # its body is in some question's own list on this page, or on the next page (the last question)
            for index, question in enumerate(candidates):
                if question is not None and _cannot_take_announcement(index, question, len(candidates)):
                    value, kind = scores[position][index]
                    scores[position][index] = (value - INTRO_WITHOUT_BODY_PENALTY, kind)
    owed = [0.0 if q is None or q.has_text else OWED_ANSWER_BONUS for q in candidates]
    if continued is not None and not continued.has_text:
        owed[0] = OWED_CONTINUED_BONUS
    owed[-1] /= 2  # the block's last question may be answered on the next page
    if continued and continued.parts and list_number(continued.parts[-1].unit.text):
        if list_number(lead[0].text) == (1,):  # a new list at the top of the page starts a new answer
            value, kind = scores[0][0]
            scores[0][0] = (value - LIST_RESTART_PENALTY, kind)
    inside_list = _inside_lists(lead, continued)

    binds = _binds_to_previous(lead)
    tail_allowed = _may_have_tail(continued)
    for position in range(len(lead)):
        if _dangling_list_item(lead, position):
            for index, question in enumerate(candidates[1:], start=1):
                if any(part.role == "follows" for part in question.parts):
                    value, kind = scores[position][index]
                    scores[position][index] = (value + DANGLING_INTRO_BONUS, kind)
    dangling = continued is not None and continued.has_text and _ends_in_intro(continued.parts[-1].unit.text)

    # state: (candidate index, in tail) → (score, previous state)
    states: dict[tuple[int, bool], tuple[float, tuple | None]] = {(-1, False): (0.0, None)}
    history = []
    for position, row in enumerate(scores):
        following: dict[tuple[int, bool], tuple[float, tuple | None]] = {}
        for (current, in_tail), (total, _) in states.items():
            for target, tail in _moves(current, in_tail, len(candidates), continued is not None, tail_allowed):
                gain = row[target][0]
                switching = target != (0 if current == -1 else current) or (tail and not in_tail)
                entering = target != current or (tail and not in_tail)
                if entering and not (tail and in_tail):
                    gain += owed[target]
                    if target == 0 and dangling:
                        gain += DANGLING_INTRO_BONUS
                    gain -= SKIPPED_OWED_PENALTY * _owed_skipped(current, target, tail, owed)
                if not switching and current != -1:
                    gain += STAY_BONUS
                    if position and _announces_elsewhere(lead, position - 1):
                        gain -= INTRO_WITHOUT_BODY_PENALTY
                if switching and position and (inside_list[position] or binds[position]):
                    gain -= LIST_BREAK_PENALTY
                if not switching and position and lead[position].after_closing:
                    gain -= AFTER_CLOSING_PENALTY
                if switching and position and CLOSING_RE.match(lead[position].text):
                    gain -= CLOSING_SWITCH_PENALTY
                key = (target, tail)
                if key not in following or total + gain > following[key][0]:
                    following[key] = (total + gain, (current, in_tail))
        history.append(following)
        states = following
    # questions never reached by the end of the lead are skipped too
    states = {
        (current, in_tail): (total - (0 if in_tail else SKIPPED_OWED_PENALTY * _owed_skipped(current, 0, True, owed)), back)
        for (current, in_tail), (total, back) in states.items()
    }

    state = max(states, key=lambda key: states[key][0])
    labels = []
    for step in reversed(history):
        labels.append(state)
        state = step[state][1]
    labels.reverse()

    for unit, (target, tail), row in zip(lead, labels, scores):
        question = candidates[target]
        role = "continued" if target == 0 else "lead"
        question.parts.append(_Part(unit, role, row[target][1].tags))


def _owed_skipped(current: int, target: int, tail: bool, owed: list[float]) -> int:
    """How many questions owed an answer a move passes over without giving them one.

    Moving from `current` to `target` passes the candidates between them; entering the tail
    (or ending the block) passes every candidate after `current`. The block's last question
    may be answered on the next page, so passing it costs nothing.
    """
    last = len(owed) - 1
    stop = last if tail else target
    return sum(1 for index in range(current + 1, stop) if owed[index] > 0)


def _ends_in_intro(text: str) -> bool:
    """'…如下：', '…如下表所示。': the paragraph announces a list or table."""
    text = text.rstrip()
    return text.endswith("：") or text.endswith(ANNOUNCING_ENDINGS)


def _binds_to_previous(lead: list["Unit"]) -> list[bool]:
    """Paragraphs that cannot open an answer of their own after the one before them.

    '…如下：' then '1. …': the numbered list the paragraph announces; '示例：…' then the
    explanation it illustrates (the export prints the example first).
    """
    binds = [False] * len(lead)
    for position in range(1, len(lead)):
        previous = lead[position - 1].text
        number = list_number(lead[position].text)
        announced = bool(number) and number == (1,) and _ends_in_intro(previous)
        binds[position] = announced or previous.startswith(EXAMPLE_PREFIXES)
    return binds


def _announces_elsewhere(lead: list["Unit"], position: int) -> bool:
    """'…：' whose next lead paragraph is not what it announces (no list item follows it)."""
    if not _ends_in_intro(lead[position].text) or position + 1 >= len(lead):
        return False
    following = lead[position + 1].text
    return list_number(following) is None and not following.startswith(("-", "•"))


def _dangling_list_item(lead: list["Unit"], position: int) -> bool:
    """'2.2 …：' directly followed by its sibling '2.3': its body went to the other stream."""
    number = list_number(lead[position].text)
    if not number or len(number) < 2 or not _ends_in_intro(lead[position].text):
        return False
    following = list_number(lead[position + 1].text) if position + 1 < len(lead) else None
    return following is not None and len(following) <= len(number) and following != number + (1,)


def _may_have_tail(continued: _Question | None) -> bool:
    """The rest of a list, table or announced text can close the next page's lead stream.

    Only an answer left open can go on there: one with its own list (the headings stream),
    one that stopped at '…如下：', or a numbered list not finished.
    """
    if continued is None or not continued.parts:
        return False
    last = continued.parts[-1].unit.text
    return (
        any(part.role == "follows" for part in continued.parts)
        or _ends_in_intro(last)
        or list_number(last) is not None
    )


def _moves(current: int, in_tail: bool, count: int, has_continued: bool, tail_allowed: bool = True):
    if in_tail:
        yield 0, True
        return
    for target in range(max(current, 0), count):
        if target == 0 and not has_continued:
            continue
        yield target, False
    if current >= 1 and has_continued and tail_allowed:
        yield 0, True


def _page_order(question: _Question) -> list[_Part]:
    """The parts in the order the page most likely printed them.

    Plain paragraphs first, then the list under the heading, closing remarks
    ('更多详情请参见…', '3. 如果以上场景都不满足…') after both, then what the next page
    carried on. Two exceptions put the list inside the paragraphs: a list opening with
    its own announcement ('…可参考以下方法进行定位：') precedes numbered steps, and an
    item '2.2 …：' followed at once by '2.3' had its body printed as that list.
    """
    lead = [p for p in question.parts if p.role == "lead"]
    follows = [p for p in question.parts if p.role == "follows"]
    continued = [p for p in question.parts if p.role == "continued"]
    body = [p for p in lead if not CLOSING_RE.match(p.unit.text)]
    closing = [p for p in lead if CLOSING_RE.match(p.unit.text)]
    head: list[_Part] = []
    if follows and body and _ends_in_intro(follows[0].unit.text) and list_number(body[0].unit.text) == (1,):
        head, follows = follows[:1], follows[1:]
    units = [p.unit for p in body]
    for position in range(len(body)):
        if follows and _dangling_list_item(units, position):
            body = body[: position + 1] + follows + body[position + 1 :]
            follows = []
            break
    return head + body + follows + closing + continued


def _to_entry(question: _Question) -> ParsedEntry:
    ordered = _page_order(question)
    spans = sorted({(question.unit.start, question.unit.end)} | {(p.unit.start, p.unit.end) for p in ordered})
    return ParsedEntry(
        question=question.unit.text,
        answer="\n".join(p.unit.text for p in ordered),
        line_start=spans[0][0],
        line_end=max(end for _, end in spans),
        section=question.section,
        updated=question.updated,
        spans=tuple(_merge_spans(spans)),
        placement=tuple(sorted({tag for p in ordered for tag in p.evidence})),
    )


def _merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + 2:  # lines one blank apart are contiguous
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
