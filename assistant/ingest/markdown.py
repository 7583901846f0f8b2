"""Markdown FAQ pages (vendor doc repositories): one heading per question or topic, the answer below it.

- `## N Title` topic headings and `### question` headings are both entries; a heading with no text of
  its own but deeper headings below it is their section; the page's `#` title is not an entry.
- HTML tags, comments and `[](id:…)` anchors are dropped, entities decoded, `<br>` a line break;
  inline code keeps its backticks and fenced code blocks stay as written (a `#` line in them is no
  heading); links keep their target, resolved against the link base (`/document/…`, `9557#…`,
  `./9557#…`, `//host/…`).
- A closing contact line ("如有任何疑问，请联系…") is page furniture, not part of the last answer.
- Each entry's anchor on the page follows the pages' own links: "## 2 调用接口耗时比较长" is
  `#2-.E8.B0.83…` (spaces as "-", UTF-8 bytes escaped with "." instead of "%").
"""

from __future__ import annotations

import html
import re
from urllib.parse import quote, urljoin

from assistant.errors import DocumentError
from assistant.ingest.model import ParsedEntry
from assistant.text import read_lines

HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
NUMBERED_HEADING_RE = re.compile(r"^\d+\s+(?=\S)")
EMPTY_ANCHOR_RE = re.compile(r"\[\]\(id:[^)]*\)")
HTML_TAG_RE = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
HTML_COMMENT_RE = re.compile(r"<!--.*?-->")
LINE_BREAK_RE = re.compile(r"<br\s*/?>", re.I)
FENCE_RE = re.compile(r"^\s*(```|~~~)")
IMAGE_RE = re.compile(r"!\[([^\]]*)\]\(([^)\s]*)[^)]*\)")
LINK_RE = re.compile(r"\[([^\]]*)\]\(\s*([^)\s]*)[^)]*\)")
BOLD_RE = re.compile(r"\*\*(.+?)\*\*")
CODE_RE = re.compile(r"(`+)(.+?)\1")
FOOTER_RE = re.compile(r"^(如有任何疑问|如有疑问|如您有任何疑问|if you have any (other )?questions)", re.I)
# Tencent's note blocks: ">?" is a note (rendered 说明), ">!" a warning (rendered 注意).
NOTE_LABELS = {"?": "说明：", "!": "注意："}


def parse_markdown(path, link_base: str | None = None, page_url: str | None = None) -> list[ParsedEntry]:
    lines = read_lines(path)
    fenced = _inside_fences(lines)
    headings = [
        (i, len(m.group(1)), m.group(2))
        for i, line in enumerate(lines)
        if not fenced[i] and (m := HEADING_RE.match(line))
    ]
    if not headings:
        raise DocumentError(path, "no Markdown headings found: is the format right?")
    has_deeper = min(level for _, level, _ in headings) == 1 and len({level for _, level, _ in headings}) > 1
    entries: list[ParsedEntry] = []
    section: dict[int, str] = {}
    for position, (start, level, title) in enumerate(headings):
        end = headings[position + 1][0] if position + 1 < len(headings) else len(lines)
        body = _without_footer(lines[start + 1 : end]) if position + 1 == len(headings) else lines[start + 1 : end]
        answer = clean_answer(body, link_base, page_url)
        deeper_follows = position + 1 < len(headings) and headings[position + 1][1] > level
        section = {k: v for k, v in section.items() if k < level}
        if level == 1 and has_deeper:  # the page title
            continue
        if not answer and deeper_follows:
            section[level] = clean_question(title)
            continue
        last = start + max((k + 1 for k, line in enumerate(body) if line.strip()), default=0)
        entries.append(
            ParsedEntry(
                question=clean_question(title),
                answer=answer,
                line_start=start + 1,
                line_end=last + 1,
                section=" / ".join(section[k] for k in sorted(section)) or None,
                anchor=heading_anchor(title),
            )
        )
    return entries


def _answer_lines(body: list[str]):
    """(line, is code): fenced code blocks as written, other lines split at `<br>`, comments dropped."""
    for raw, in_fence in zip(body, _inside_fences(body)):
        if in_fence:
            yield raw.rstrip(), True
        else:
            for piece in LINE_BREAK_RE.split(HTML_COMMENT_RE.sub("", raw.rstrip())):
                yield piece, False


def _inside_fences(lines: list[str]) -> list[bool]:
    """For each line: is it part of a fenced code block (its fences included)?"""
    inside, fence = [], None
    for line in lines:
        match = FENCE_RE.match(line)
        if fence is None and match:
            fence = match.group(1)
            inside.append(True)
        elif fence is not None:
            inside.append(True)
            if match and match.group(1) == fence:
                fence = None
        else:
            inside.append(False)
    return inside


def _without_footer(body: list[str]) -> list[str]:
    """The last answer without a closing contact paragraph."""
    content = [k for k, line in enumerate(body) if line.strip()]
    if len(content) > 1 and FOOTER_RE.match(body[content[-1]].strip()) and not body[content[-1] - 1].strip():
        return body[: content[-1]]
    return body


def heading_anchor(title: str) -> str:
    """The anchor the vendor's pages use for a heading, as their own links show.

    Chinese: "2 调用接口" → "2-.E8.B0.83.E7.94.A8.E6.8E.A5.E5.8F.A3" (UTF-8 bytes escaped with ".");
    English: "2 It takes a long time to call the API" → "2-it-takes-a-long-time-to-call-the-api".
    """
    text = HTML_TAG_RE.sub("", EMPTY_ANCHOR_RE.sub("", title)).strip()
    if text.isascii():
        return re.sub(r"\s+", "-", re.sub(r"[^a-z0-9\s-]", "", text.lower()).strip())
    text = re.sub(r"\s+", "-", text)
    return quote(text, safe="-_").replace("%", ".")


def clean_question(title: str) -> str:
    title = HTML_TAG_RE.sub("", EMPTY_ANCHOR_RE.sub("", title))
    title = NUMBERED_HEADING_RE.sub("", title.strip())
    return clean_inline(title, None, keep_code=False).strip()


def clean_answer(body: list[str], link_base: str | None, page_url: str | None = None) -> str:
    out: list[str] = []
    for line, is_code in _answer_lines(body):
        if is_code:
            out.append(line)  # code as written
            continue
        note = re.match(r"^>\s*([?!])\s*(.*)$", line)
        if note:
            out.append(NOTE_LABELS[note.group(1)] + clean_inline(note.group(2).strip(), link_base, page_url=page_url))
            continue
        if line.startswith(">"):
            line = line[1:]
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        text = clean_inline(line.strip(), link_base, page_url=page_url)
        if not text:
            continue
        out.append("  " + text if indent and _is_list_item(text) else text)
    return "\n".join(out)


def clean_inline(text: str, link_base: str | None, keep_code: bool = True, page_url: str | None = None) -> str:
    """Markup to plain text; code spans are kept verbatim (with their backticks unless keep_code=False)."""
    parts = []
    position = 0
    for match in CODE_RE.finditer(text):
        parts.append(_clean_prose(text[position : match.start()], link_base, page_url))
        parts.append(match.group(0) if keep_code else match.group(2))
        position = match.end()
    parts.append(_clean_prose(text[position:], link_base, page_url))
    return re.sub(r"[ \t]+", " ", "".join(parts)).strip()


def _clean_prose(text: str, link_base: str | None, page_url: str | None) -> str:
    text = HTML_TAG_RE.sub("", HTML_COMMENT_RE.sub("", EMPTY_ANCHOR_RE.sub("", text)))
    text = IMAGE_RE.sub(lambda m: _render_image(m.group(2), link_base), text)
    text = LINK_RE.sub(lambda m: _render_link(m.group(1), m.group(2), page_url if m.group(2).startswith("#") else link_base), text)
    return html.unescape(BOLD_RE.sub(r"\1", text)).replace("\xa0", " ")


def resolve(href: str, link_base: str | None) -> str | None:
    """An absolute URL for the link, or None when it cannot be resolved."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", href, re.I):
        return href
    if href.startswith("//"):
        return "https:" + href
    return urljoin(link_base, href) if link_base else None


def _render_link(label: str, href: str, link_base: str | None) -> str:
    label = label.strip()
    if not href:
        return label
    url = resolve(href, link_base)
    if url is None:
        return label
    return f"{label} ({url})" if label else url


def _render_image(src: str, link_base: str | None) -> str:
    url = resolve(src, link_base) if src else None
    return f"(image: {url})" if url else ""


def _is_list_item(text: str) -> bool:
    return bool(re.match(r"^([-*+]|\d+[.、])\s*", text))
