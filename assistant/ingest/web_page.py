"""A saved help-center web page: header, table of contents, then question/answer body.

Every inline link or bold word of the page was cut onto a line of its own, so the
parser re-joins pieces of one sentence before it looks for questions and answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.errors import DocumentError
from assistant.ingest.model import ParsedEntry
from assistant.text import (
    CONTINUING_PUNCT,
    QUESTION_MARKS,
    content_chars,
    ends_sentence,
    join_pieces,
    read_lines,
)

HEADER_RE = re.compile(r"^(URL|标题|内容长度):\s*(.*)$")
RULE_RE = re.compile(r"^={5,}\s*$")
FOOTER_RES = [re.compile(p) for p in (r"^上一篇：", r"^下一篇：", r"^该文章对您有帮助吗", r"视频教程$", r"^反馈$")]
# Admonition labels the page renders as boxes: kept as a label on their own line.
ADMONITIONS = {"重要", "说明", "注意", "警告", "注"}
FRAGMENT_CHARS = 10  # pieces cut out of a sentence (a number, a link text) are short
GROUP_HEADING_CHARS = 20


@dataclass
class _Line:
    text: str
    start: int  # 1-based line numbers in the file
    end: int


def parse_web_page(path) -> list[ParsedEntry]:
    raw = read_lines(path)
    body_start = _skip_header(raw)
    footer = _footer_start(raw)
    lines = [
        _Line(text.strip(), number, number)
        for number, text in enumerate(raw[body_start:footer], start=body_start + 1)
        if text.strip()
    ]
    toc, toc_end = _read_toc(lines)
    if not toc:
        raise DocumentError(path, "no table of contents found (group headings ending in '：')")
    entries = _read_body(lines[toc_end:], toc)
    if not entries:
        raise DocumentError(path, "no question of the table of contents was found in the body")
    return entries


def _skip_header(raw: list[str]) -> int:
    for index, line in enumerate(raw[:10]):
        if RULE_RE.match(line):
            return index + 1
    return 0


def _footer_start(raw: list[str]) -> int:
    end = len(raw)
    while end > 0 and (not raw[end - 1].strip() or any(r.search(raw[end - 1].strip()) for r in FOOTER_RES)):
        end -= 1
    return end


def _is_group_heading(text: str) -> bool:
    return text.endswith("：") and len(text) <= GROUP_HEADING_CHARS and "？" not in text


def _question_at(lines: list[_Line], index: int) -> tuple[_Line, int]:
    """The question starting at `index`, re-joined if the page cut it; and the index after it."""
    current = _Line(lines[index].text, lines[index].start, lines[index].end)
    index += 1
    if current.text[0] in CONTINUING_PUNCT:
        return current, index  # the tail of a cut sentence, never a question
    while index < len(lines) and not current.text.endswith(tuple(QUESTION_MARKS)):
        piece = lines[index].text
        last_piece_short = len(lines[index - 1].text) <= FRAGMENT_CHARS
        if not (len(piece) <= FRAGMENT_CHARS or last_piece_short):
            break
        current = _Line(join_pieces(current.text, piece), current.start, lines[index].end)
        index += 1
    return current, index


def _key(text: str) -> str:
    return content_chars(text)


def _read_toc(lines: list[_Line]) -> tuple[dict[str, str], int]:
    """Questions of the table of contents → their group; and where the body starts."""
    toc: dict[str, str] = {}
    group = None
    index = 0
    while index < len(lines) and not _is_group_heading(lines[index].text):
        index += 1  # introduction before the first group
    while index < len(lines):
        text = lines[index].text
        if _is_group_heading(text):
            group = text.rstrip("：")
            index += 1
            continue
        question, after = _question_at(lines, index)
        key = _key(question.text)
        upcoming = _question_at(lines, after)[0].text if after < len(lines) else ""
        next_is_toc = bool(upcoming) and (
            _is_group_heading(lines[after].text)
            or _key(upcoming) in toc
            or upcoming.endswith(tuple(QUESTION_MARKS))
        )
        if key in toc and not next_is_toc:
            return toc, index  # a question seen again and followed by prose: the body
        toc.setdefault(key, group)
        index = after
    return toc, index


def _read_body(lines: list[_Line], toc: dict[str, str]) -> list[ParsedEntry]:
    entries: list[ParsedEntry] = []
    answer: list[_Line] = []
    index = 0
    while index < len(lines):
        question, after = _question_at(lines, index)
        in_toc = _key(question.text) in toc
        previous_done = index == 0 or not answer or ends_sentence(answer[-1].text)
        extra = (
            question.text.endswith(tuple(QUESTION_MARKS))
            and after == index + 1
            and previous_done
            and len(question.text) <= 60
        )
        if in_toc or (extra and entries):
            if entries:
                _finish(entries[-1], answer)
            entries.append(
                ParsedEntry(
                    question=question.text,
                    answer="",
                    line_start=question.start,
                    line_end=question.end,
                    section=toc.get(_key(question.text)),
                )
            )
            answer = []
            index = after
            continue
        answer.append(lines[index])
        index += 1
    if entries:
        _finish(entries[-1], answer)
    return entries


def _finish(entry: ParsedEntry, answer: list[_Line]) -> None:
    paragraphs = _join_fragments(answer)
    entry.answer = "\n".join(p.text for p in paragraphs)
    if answer:
        entry.line_end = answer[-1].end


def _join_fragments(lines: list[_Line]) -> list[_Line]:
    """Re-join sentences the page cut at every link or bold word."""
    out: list[_Line] = []
    for line in lines:
        text = line.text
        if text in ADMONITIONS:
            out.append(_Line(text + "：", line.start, line.end))
            out.append(_Line("", line.end, line.end))  # the admonition's text starts afresh
            continue
        if out and _continues(out[-1].text, text):
            previous = out[-1]
            out[-1] = _Line(join_pieces(previous.text, text), previous.start, line.end)
        else:
            out.append(_Line(text, line.start, line.end))
    return [p for p in out if p.text]


def _continues(previous: str, text: str) -> bool:
    if not previous:
        return True
    if text[0] in CONTINUING_PUNCT:
        return True
    return not ends_sentence(previous) and not previous.endswith(("}", "）"))
