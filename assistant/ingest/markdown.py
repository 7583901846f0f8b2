"""Markdown FAQ pages: one heading per question, the answer below it."""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import urljoin

from assistant.ingest.model import ParsedEntry
from assistant.text import read_lines
from assistant.errors import DocumentError

HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
NUMBERED_HEADING_RE = re.compile(r"^\d+\s+(?=\S)")
EMPTY_ANCHOR_RE = re.compile(r"\[\]\(id:[^)]*\)")
IMAGE_RE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
LINK_RE = re.compile(r"\[([^\]]*)\]\(([^)\s]*)\)")
BOLD_RE = re.compile(r"\*\*(.+?)\*\*")
CODE_RE = re.compile(r"`([^`]*)`")
# Tencent's note blocks: ">?" is a note (rendered 说明), ">!" a warning (rendered 注意).
NOTE_LABELS = {"?": "说明：", "!": "注意："}


def parse_markdown(path, link_base: str | None = None) -> list[ParsedEntry]:
    lines = read_lines(path)
    headings = [(i, m) for i, line in enumerate(lines) if (m := HEADING_RE.match(line))]
    if not headings:
        raise DocumentError(path, "no Markdown headings found: is the format right?")
    faq_level = Counter(len(m.group(1)) for _, m in headings).most_common(1)[0][0]
    starts = [i for i, m in headings if len(m.group(1)) <= faq_level]
    entries = []
    for position, start in enumerate(starts):
        end = starts[position + 1] if position + 1 < len(starts) else len(lines)
        title = HEADING_RE.match(lines[start]).group(2)
        body = lines[start + 1 : end]
        last = start + max((k + 1 for k, line in enumerate(body) if line.strip()), default=0)
        entries.append(
            ParsedEntry(
                question=clean_question(title),
                answer=clean_answer(body, link_base),
                line_start=start + 1,
                line_end=last + 1,
            )
        )
    return entries


def clean_question(title: str) -> str:
    title = EMPTY_ANCHOR_RE.sub("", title)
    title = NUMBERED_HEADING_RE.sub("", title)
    return clean_inline(title, None).strip()


def clean_answer(body: list[str], link_base: str | None) -> str:
    out: list[str] = []
    for raw in body:
        line = raw.rstrip()
        note = re.match(r"^>\s*([?!])\s*(.*)$", line)
        if note:
            out.append(NOTE_LABELS[note.group(1)] + note.group(2).strip())
            continue
        if line.startswith(">"):
            line = line[1:]
        line = IMAGE_RE.sub("", line)
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        text = clean_inline(line.strip(), link_base)
        if not text:
            continue
        out.append("  " + text if indent and _is_list_item(text) else text)
    return "\n".join(out)


def clean_inline(text: str, link_base: str | None) -> str:
    text = EMPTY_ANCHOR_RE.sub("", text)
    text = IMAGE_RE.sub("", text)
    text = LINK_RE.sub(lambda m: _render_link(m.group(1), m.group(2), link_base), text)
    text = BOLD_RE.sub(r"\1", text)
    text = CODE_RE.sub(r"\1", text)
    return re.sub(r"[ \t]+", " ", text).strip()


def _render_link(label: str, href: str, link_base: str | None) -> str:
    label = label.strip()
    if not href or href.startswith("#"):
        return label
    if not re.match(r"^[a-z]+://", href):
        if not link_base:
            return label
        href = urljoin(link_base, href)
    return f"{label} ({href})" if label else href


def _is_list_item(text: str) -> bool:
    return bool(re.match(r"^([-*+]|\d+[.、])\s*", text))
