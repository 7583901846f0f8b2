"""Pairing questions with their answers in a scrambled two-column PDF export.

Inside a page block the export wrote two streams one after the other: first
the plain paragraphs of the page (the "lead" stream), then the headings with
the list items that followed them. Each stream keeps the page order, so the
lead paragraphs belong to the block's questions in the same order — a
monotone alignment — except that the first paragraphs may continue the
previous block's last question, and the block may end with the rest of that
question's answer before its own first heading (the "tail").

Each block is aligned as one global decision (dynamic programming over every
labelling the order allows), maximising the evidence that each lead paragraph
belongs to its question:
- meaning: the shipped embedder's cosine of question (query role) and paragraph
  (passage role), relative to the block's other candidates;
- content: distinctive words or an error code shared with the question or with
  the text already under it; an answer does not repeat itself;
- structure: the order; a question with no text of its own is owed one; lists,
  announcements ('…如下：'), examples, closing remarks and the vendor's footer
  hold paragraphs together or apart (see `pdf_cues`);
- edition: the paragraph is found in the same question's answer in another
  edition. This only breaks ties: adding a document never re-pairs a page.
`placement` names, per entry, the evidence that decided its paragraphs.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from assistant.ingest import pdf_cues as cues
from assistant.ingest.model import ParsedEntry
from assistant.similarity import question_similarity, topic_text
from assistant.text import bigrams, containment, content_chars, dice, identifiers

if TYPE_CHECKING:
    from assistant.ingest.pdf_meaning import MeaningScorer
    from assistant.ingest.pdf_text import Block, Unit

SAME_QUESTION = 0.6  # question_similarity at which another edition's entry is the same question
# Other editions only break ties: far below any real difference in evidence.
EDITION_TIE_BREAK = 1e-3
EDITION_EVIDENCE = 0.5  # containment from which placement says "edition-confirmed"
# Meaning: cosines centred over the block in both directions, so that neither a generic
# paragraph nor a generic question dominates; differences are a few hundredths.
MEANING_WEIGHT = 30.0
MEANING_EVIDENCE = 0.3
NOTE_MEANING_SHARE = 0.25  # a caveat's wording says little about what it qualifies
QUESTION_WEIGHT = 0.8
FOLLOWING_WEIGHT = 0.6
IDENTIFIER_WEIGHT = 1.0
CONTENT_EVIDENCE = 0.25
DUPLICATE_PENALTY = 1.0  # an answer does not say the same thing twice
DUPLICATE_DICE = 0.7
DUPLICATE_CONTAINED = 0.8  # …nor what its paragraphs already said between them
DUPLICATE_MIN_CHARS = 20
# Structure
OWED_ANSWER_BONUS = 0.35
UNFINISHED_ENDINGS = ("；", "，", "、", ";", ",")
OWED_CONTINUED_BONUS = 1.0  # a question with no text on its page is answered at the top of the next
SKIPPED_OWED_PENALTY = 3.0  # passing over a question owed an answer
DANGLING_BONUS = 1.0  # text announced by '…如下：' (or an item '2.2 …：') goes where its body is
STAY_BONUS = 0.2  # consecutive paragraphs more often share a question than not
LIST_BREAK_PENALTY = 1.0  # "2.2" then "2.3", "…如下：" then "1.", "示例" then its explanation
LIST_RESTART_PENALTY = 0.5  # a second list starting at "1." rarely continues an answer
ANNOUNCEMENT_PENALTY = 0.5  # "…如下：" must be followed by what it announces
# A closing remark ("更多详情请参见…") is the last paragraph of the answer it closes: it opens no answer
# and nothing of its answer follows it. The lead stream skips the lists printed under headings, so
# it closes the answer before it in the stream or, moved as little as the page allows, the list of
# the very next question (the page printed it under that list).
CLOSING_SWITCH_PENALTY = 0.5
AFTER_FOOTER_PENALTY = 2.0  # the vendor's "如有任何疑问…" footer ends an answer


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

    @property
    def tags(self) -> tuple[str, ...]:
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

    @property
    def has_own_list(self) -> bool:
        return any(part.role == "follows" for part in self.parts)

    @property
    def answered(self) -> bool:
        """It has text of its own that does not stop mid-sentence ('…即计费；' is owed the rest)."""
        return self.has_text and not self.parts[-1].unit.text.endswith(UNFINISHED_ENDINGS)

    @property
    def list_open(self) -> bool:
        """Its own list can still be closed by a remark: it does not end with a note or a closing remark."""
        follows = [part.unit.text for part in self.parts if part.role == "follows"]
        return bool(follows) and not cues.is_note(follows[-1]) and not cues.is_closing(follows[-1])

    @property
    def left_open(self) -> bool:
        """Its answer may go on at the end of the next page: a list under its heading, '…如下：', unfinished steps."""
        if not self.parts:
            return False
        last = self.parts[-1].unit.text
        return self.has_own_list or cues.announces(last) or cues.list_number(last) is not None


def align_document(
    blocks: list["Block"], references: list[Reference], meaning: "MeaningScorer | None" = None
) -> list[ParsedEntry]:
    units = [unit for block in blocks for unit in block.units]
    idf = _inverse_document_frequency([unit.text for unit in units])
    if meaning is not None:  # one batch, one cache write, for the whole document
        meaning.prepare(
            queries=[u.text for u in units if u.is_question], passages=[u.text for u in units if not u.is_question]
        )
    questions: list[_Question] = []
    open_question: _Question | None = None
    pending: list["Unit"] = []
    for block in blocks:
        first = next((i for i, unit in enumerate(block.units) if unit.is_question), len(block.units))
        lead = pending + block.units[:first]
        pending = []
        block_questions: list[_Question] = []
        for unit in block.units[first:]:
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
        bigrams(ref.answer) for ref in references if question_similarity(question, ref.question) >= SAME_QUESTION
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


def _lexical(unit: "Unit", question: _Question, idf: dict[str, float]) -> _Evidence:
    """Shared words and codes, an answer that would repeat itself, and the other editions."""
    unit_grams = bigrams(unit.text)
    so_far = question.text_so_far
    asked = _weighted_share(bigrams(topic_text(question.unit.text)), unit_grams, idf)
    following = _weighted_share(unit_grams, bigrams(so_far), idf)
    unit_ids = identifiers(unit.text)
    question_ids = identifiers(question.unit.text)
    shared = bool(unit_ids & (question_ids | identifiers(so_far)))
    conflict = bool(unit_ids and question_ids and not unit_ids & question_ids)
    content = QUESTION_WEIGHT * asked + FOLLOWING_WEIGHT * following + IDENTIFIER_WEIGHT * (shared - conflict)
    if cues.is_bare_announcement(unit.text) and question.parts and question.parts[-1].unit.text.endswith("："):
        content -= ANNOUNCEMENT_PENALTY  # two announcements in a row, nothing announced
    label = cues.label(unit.text)
    if label and any(label == cues.label(part.unit.text) for part in question.parts):
        content -= DUPLICATE_PENALTY  # a second "国内短信：" item: the answer already has its own
    if len(content_chars(unit.text)) >= DUPLICATE_MIN_CHARS and (
        any(dice(unit_grams, bigrams(part.unit.text)) >= DUPLICATE_DICE for part in question.parts)
        or containment(unit_grams, bigrams(so_far)) >= DUPLICATE_CONTAINED
    ):
        content -= DUPLICATE_PENALTY
    edition = max((containment(unit_grams, ref) for ref in question.references), default=0.0)
    return _Evidence(content=content, edition=edition)


def _meaning(lead: list["Unit"], candidates: list[_Question | None], meaning: "MeaningScorer | None") -> np.ndarray:
    """Per (paragraph, candidate): how much better it answers this question than the block's others."""
    present = [index for index, q in enumerate(candidates) if q is not None]
    centred = np.zeros((len(lead), len(candidates)))
    if meaning is None or len(present) < 2:
        return centred
    similarity = meaning.similarity([candidates[i].unit.text for i in present], [unit.text for unit in lead])
    similarity = similarity - similarity.mean(axis=1, keepdims=True)
    similarity = similarity - similarity.mean(axis=0, keepdims=True)
    centred[:, present] = MEANING_WEIGHT * similarity
    for position, unit in enumerate(lead):
        if cues.is_note(unit.text):
            centred[position] *= NOTE_MEANING_SHARE
    return centred


def _takes_announcement(index: int, question: _Question, count: int) -> bool:
    """Where an announcement whose body is not beside it can go: to a list under a heading on this
    page that does not open with its own announcement, or to the block's last question (next page)."""
    if index == 0:
        return False
    if question.has_own_list:
        return not cues.announces(next(p for p in question.parts if p.role == "follows").unit.text)
    return index == count - 1


def _score_table(
    lead: list["Unit"], candidates: list[_Question | None], idf: dict[str, float], meaning: "MeaningScorer | None"
) -> tuple[np.ndarray, list[list[_Evidence]]]:
    """Evidence for every (paragraph, candidate) that does not depend on the neighbours' labels."""
    texts = [unit.text for unit in lead]
    centred = _meaning(lead, candidates, meaning)
    values = np.full((len(lead), len(candidates)), -np.inf)
    kinds = [[_Evidence()] * len(candidates) for _ in lead]
    for position, unit in enumerate(lead):
        elsewhere = cues.announces_elsewhere(texts, position)
        dangling = cues.dangling_list_item(texts, position)
        for index, question in enumerate(candidates):
            if question is None:
                continue
            lexical = _lexical(unit, question, idf)
            kinds[position][index] = _Evidence(lexical.content, lexical.edition, float(centred[position, index]))
            value = lexical.content + EDITION_TIE_BREAK * lexical.edition + centred[position, index]
            if elsewhere and not _takes_announcement(index, question, len(candidates)):
                value -= ANNOUNCEMENT_PENALTY
            if dangling and index > 0 and question.has_own_list:
                value += DANGLING_BONUS
            values[position, index] = value
    continued = candidates[0]
    if continued and continued.parts and cues.list_number(continued.parts[-1].unit.text):
        if cues.list_number(texts[0]) == (1,):  # a new list at the top of the page starts a new answer
            values[0, 0] -= LIST_RESTART_PENALTY
    return values, kinds


def _assign(
    lead: list["Unit"],
    continued: _Question | None,
    questions: list[_Question],
    idf: dict[str, float],
    meaning: "MeaningScorer | None" = None,
) -> None:
    if not lead:
        return
    if not questions:
        for unit in lead:
            continued.parts.append(_Part(unit, "continued", ("structure",)))
        return
    candidates: list[_Question | None] = [continued, *questions]
    values, kinds = _score_table(lead, candidates, idf, meaning)
    labels = _best_labelling(lead, candidates, values)
    for position, (unit, target) in enumerate(zip(lead, labels)):
        role = "continued" if target == 0 else "lead"
        candidates[target].parts.append(_Part(unit, role, kinds[position][target].tags))


def _best_labelling(lead: list["Unit"], candidates: list[_Question | None], values: np.ndarray) -> list[int]:
    """The highest-scoring labelling the page order allows (Viterbi over (candidate, in tail) states)."""
    continued = candidates[0]
    texts = [unit.text for unit in lead]
    owed = [0.0 if q is None or q.answered else OWED_ANSWER_BONUS for q in candidates]
    if continued is not None and not continued.has_text:
        owed[0] = OWED_CONTINUED_BONUS
    owed[-1] /= 2  # the block's last question may be answered on the next page
    holds = [a or b for a, b in zip(cues.inside_lists(texts, _last_number(continued)), cues.binds_to_previous(texts))]
    closes = [cues.is_closing(text) for text in texts]
    closes_list = [q is not None and q.list_open for q in candidates]
    announced = continued is not None and continued.has_text and cues.announces(continued.parts[-1].unit.text)
    tail_allowed = continued is not None and continued.left_open

    states: dict[tuple[int, bool], float] = {(-1, False): 0.0}
    history: list[dict[tuple[int, bool], tuple[int, bool]]] = []
    for position in range(len(lead)):
        best: dict[tuple[int, bool], float] = {}
        back: dict[tuple[int, bool], tuple[int, bool]] = {}
        for (current, in_tail), total in states.items():
            for target, tail in _moves(current, in_tail, len(candidates), continued is not None, tail_allowed):
                gain = values[position, target]
                entering = target != current or (tail and not in_tail)  # first paragraph it gets here
                switching = entering and not (current == -1 and target == 0)  # a new answer begins
                if entering:
                    gain += owed[target] + (DANGLING_BONUS if target == 0 and announced else 0.0)
                    gain -= SKIPPED_OWED_PENALTY * _owed_skipped(current, target, tail, owed)
                if not switching and position:
                    gain += STAY_BONUS
                    if cues.announces_other_text_next(texts, position - 1):
                        gain -= ANNOUNCEMENT_PENALTY
                    if lead[position].after_closing:
                        gain -= AFTER_FOOTER_PENALTY
                    if closes[position - 1] and not closes[position]:
                        gain -= CLOSING_SWITCH_PENALTY  # the answer went on after its closing remark
                if switching and position:
                    gain -= LIST_BREAK_PENALTY * holds[position]
                    if closes[position] and not (target == current + 1 and closes_list[target]):
                        gain -= CLOSING_SWITCH_PENALTY
                key = (target, tail)
                if key not in best or total + gain > best[key]:
                    best[key], back[key] = total + gain, (current, in_tail)
        history.append(back)
        states = best
    # questions never reached by the end of the lead are passed over too
    final = {key: total - (0 if key[1] else SKIPPED_OWED_PENALTY * _owed_skipped(key[0], 0, True, owed))
             for key, total in states.items()}
    state = max(final, key=final.__getitem__)
    labels = []
    for back in reversed(history):
        labels.append(state[0])
        state = back[state]
    return labels[::-1]


def _last_number(question: _Question | None) -> tuple[int, ...] | None:
    return cues.list_number(question.parts[-1].unit.text) if question and question.parts else None


def _owed_skipped(current: int, target: int, tail: bool, owed: list[float]) -> int:
    """How many questions owed an answer a move passes over without giving them one.

    Moving from `current` to `target` passes the candidates between them; entering the tail
    (or ending the block) passes every candidate after `current`. The block's last question
    may be answered on the next page, so passing it costs nothing.
    """
    stop = len(owed) - 1 if tail else target
    return sum(1 for index in range(current + 1, stop) if owed[index] > 0)


def _moves(current: int, in_tail: bool, count: int, has_continued: bool, tail_allowed: bool):
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
    carried on. A list that stops at '；' comes before the paragraphs that finish it.
    Two exceptions put the list inside the paragraphs: a list opening with
    its own announcement ('…可参考以下方法进行定位：') precedes numbered steps, and a
    paragraph announcing what does not follow it ('…策略为：', or '2.2 …：' followed at
    once by '2.3') had that list printed as its body (notes under it stay last).
    """
    lead = [p for p in question.parts if p.role == "lead"]
    follows = [p for p in question.parts if p.role == "follows"]
    continued = [p for p in question.parts if p.role == "continued"]
    body = [p for p in lead if not cues.is_closing(p.unit.text)]
    closing = [p for p in lead if cues.is_closing(p.unit.text)]
    head: list[_Part] = []
    if follows and body and cues.announces(follows[0].unit.text) and cues.list_number(body[0].unit.text) == (1,):
        head, follows = follows[:1], follows[1:]
    texts = [p.unit.text for p in body]
    announcing = next(
        (i for i in range(len(body)) if cues.dangling_list_item(texts, i) or cues.announces_other_text_next(texts, i)),
        None,
    )
    if follows and announcing is not None:
        notes = [p for p in follows if cues.is_note(p.unit.text)]
        announced = [p for p in follows if not cues.is_note(p.unit.text)]
        body, follows = body[: announcing + 1] + announced + body[announcing + 1 :], notes
    if follows and follows[-1].unit.text.endswith(UNFINISHED_ENDINGS):  # '…即计费；' goes on in the paragraphs
        body, follows = follows + body, []
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
