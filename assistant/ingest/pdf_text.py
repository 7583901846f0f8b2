"""Product documents exported from PDF to text.

Layout read here: front matter (copyright, contents) before the first section;
sections headed by a title and "最近更新时间：<date>"; in exports of two-column
pages, page blocks closed by a run of bare URLs. Inside a block the questions
and their answers may be out of order: `pdf_align` pairs them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import DocumentError
from assistant.ingest.model import ParsedEntry
from assistant.ingest.pdf_align import Reference, align_document
from assistant.ingest.pdf_meaning import MeaningScorer, default_scorer
from assistant.text import (
    CONTINUING_PUNCT,
    QUESTION_MARKS,
    content_chars,
    display_width,
    ends_sentence,
    is_cjk,
    join_pieces,
    read_lines,
    tidy_spaces,
)

log = logging.getLogger(__name__)

SECTION_DATE_RE = re.compile(r"^\s*最近更新时间：\s*(\d{4}-\d{2}-\d{2})")
URL_LINE_RE = re.compile(r"^\s*https?://\S+\s*$")
LIST_START_RE = re.compile(r"^(?:[-•]\s+|\d+(?:\.\d+)+\s|\d+[.、]\s*)")
LINK_RE = re.compile(r"\[([^\]]*)\]\((?:#[^)]*)?\)")
API_NAME_START_RE = re.compile(r"^[A-Z][A-Za-z]+\.[A-Z]")
# A line at least this wide (CJK counts 2) that ends mid-sentence was wrapped.
WRAP_WIDTH = 70
MAX_QUESTION_CHARS = 80
# Lines that close a section in the export, not part of any answer.
SECTION_CLOSINGS = {content_chars("如有任何疑问，请联系 腾讯云短信小助手 ，将有专人为您解答。")}
NOTE_LABELS = {"说明", "注意", "说明：", "注意：", "注：", "重要："}
# A console screenshot flattened into text: a run of short unpunctuated lines or tab rows.
SCREENSHOT_RUN = 4
SCREENSHOT_CELL_CHARS = 8


@dataclass
class Unit:
    """A logical line: one or more lines of the file re-joined."""

    text: str
    start: int
    end: int
    raw_last: str = ""
    after_closing: bool = False  # the export printed a section footer right before it

    @property
    def is_question(self) -> bool:
        text = self.text
        return (
            text.endswith(tuple(QUESTION_MARKS))
            and len(content_chars(text)) <= MAX_QUESTION_CHARS
            and not LIST_START_RE.match(text)
            and text[0] not in CONTINUING_PUNCT
        )


@dataclass
class Block:
    section: str
    updated: str | None
    units: list[Unit]
    opens_section: bool


@dataclass
class Furniture:
    """What the parser dropped and why: logged, so nothing is lost silently."""

    lines: list[tuple[int, str, str]] = field(default_factory=list)

    def drop(self, number: int, text: str, why: str) -> None:
        self.lines.append((number, text, why))


def parse_pdf_text(
    path: Path, references: list[Reference] | None = None, meaning: MeaningScorer | None = None
) -> list[ParsedEntry]:
    """`meaning` defaults to the bundled embedder with its vectors cached under the settings' cache dir."""
    lines = read_lines(path)
    furniture = Furniture()
    blocks = _read_blocks(path, lines, furniture)
    for number, text, why in furniture.lines:
        log.debug("%s:%d dropped (%s): %s", path.name, number, why, text)
    entries = align_document(blocks, references or [], meaning or default_scorer())
    if not entries:
        raise DocumentError(path, "no questions found (lines ending in '？')")
    return entries


def _read_blocks(path: Path, lines: list[str], furniture: Furniture) -> list[Block]:
    numbered = [(number, text) for number, text in enumerate(lines, start=1) if text.strip()]
    headers = [
        k for k in range(len(numbered) - 1) if SECTION_DATE_RE.match(numbered[k + 1][1])
    ]
    if not headers:
        raise DocumentError(path, "no section headers ('最近更新时间：YYYY-MM-DD') found")
    for number, text in numbered[: headers[0]]:
        furniture.drop(number, text, "front matter")
    blocks: list[Block] = []
    for position, header in enumerate(headers):
        section = numbered[header][1].strip()
        updated = SECTION_DATE_RE.match(numbered[header + 1][1]).group(1)
        end = headers[position + 1] if position + 1 < len(headers) else len(numbered)
        body = _drop_screenshots(numbered[header + 2 : end], furniture)
        for index, page in enumerate(_split_pages(body, furniture)):
            blocks.append(
                Block(section, updated, _join_units(page, furniture), opens_section=index == 0)
            )
    return blocks


def _split_pages(body: list[tuple[int, str]], furniture: Furniture) -> list[list[tuple[int, str]]]:
    pages: list[list[tuple[int, str]]] = [[]]
    for number, text in body:
        if URL_LINE_RE.match(text):
            furniture.drop(number, text, "page URL block")
            if pages[-1]:
                pages.append([])
        else:
            pages[-1].append((number, text))
    return [page for page in pages if page]


def _is_screenshot_cell(text: str) -> bool:
    stripped = text.strip()
    return "\t" in stripped or (
        len(stripped) <= SCREENSHOT_CELL_CHARS and not any(p in stripped for p in "。，；：！？,.;")
    )


def _drop_screenshots(body: list[tuple[int, str]], furniture: Furniture) -> list[tuple[int, str]]:
    kept: list[tuple[int, str]] = []
    run: list[tuple[int, str]] = []
    for item in body + [(0, "。")]:  # sentinel flushes the last run
        if _is_screenshot_cell(item[1]) and not URL_LINE_RE.match(item[1]):
            run.append(item)
            continue
        if len(run) >= SCREENSHOT_RUN:
            for number, text in run:
                furniture.drop(number, text, "flattened screenshot")
        else:
            kept.extend(run)
        run = []
        if item[0]:
            kept.append(item)
    return kept


def _join_units(page: list[tuple[int, str]], furniture: Furniture) -> list[Unit]:
    units: list[Unit] = []
    current: Unit | None = None
    closed = False
    for number, raw in page:
        text = _clean_line(raw)
        if content_chars(text) in SECTION_CLOSINGS:
            furniture.drop(number, text, "section closing remark")
            current = None
            closed = True
            continue
        if current is not None and _continues(current, text):
            wrapped_at_space = " " if current.raw_last.endswith(" ") else ""
            current.text = join_pieces(current.text + wrapped_at_space, text)
            current.end = number
            current.raw_last = raw
            continue
        if len(text) == 1 and is_cjk(text):
            furniture.drop(number, text, "stray character")
            current = None
            continue
        current = Unit(text, number, number, raw, after_closing=closed)
        closed = False
        units.append(current)
    for unit in units:
        unit.text = tidy_spaces(unit.text)
    return _attach_note_labels(units)


def _clean_line(raw: str) -> str:
    """Links kept as their text (the export lost their targets); '- 1、' list marks simplified."""
    text = LINK_RE.sub(lambda m: m.group(1), raw.strip())
    text = re.sub(r"^-\s+(?=\d)", "", text)
    return "  " + text if raw.startswith(" - ") and text[:1].isdigit() else text


def _continues(current: Unit, text: str) -> bool:
    last = current.raw_last
    if text[0] in CONTINUING_PUNCT:
        return True
    if last.rstrip().endswith("）") and current.text.startswith("（"):
        return False  # a parenthetical note on its own line is complete
    if ends_sentence(last):
        # "短信发送提示：" + "UnsupportedOperation.…": a question cut before an API name.
        return last.rstrip().endswith("：") and len(current.text) <= 12 and bool(API_NAME_START_RE.match(text))
    if LIST_START_RE.match(text):
        return False
    return display_width(last.rstrip()) >= WRAP_WIDTH or last.endswith(" ")


def _attach_note_labels(units: list[Unit]) -> list[Unit]:
    """A note label ('说明：') belongs to the note that follows it."""
    out: list[Unit] = []
    for unit in units:
        if out and out[-1].text in NOTE_LABELS:
            label = out.pop()
            text = label.text.rstrip("：") + "：\n" + unit.text
            unit = Unit(text, label.start, unit.end, unit.raw_last, label.after_closing)
        out.append(unit)
    return out
