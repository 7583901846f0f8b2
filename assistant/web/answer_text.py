"""An FAQ answer as text: plain for the clipboard, HTML (escaped, bold and links kept) for the chat."""

from __future__ import annotations

import html
import re

MARKDOWN_LINK_RE = re.compile(r"\[([^\]\n]+)\]\((https?://[^\s)]+)\)")
# A URL ends at whitespace, a closing bracket, quotes or CJK punctuation: "(…/3773)解决" keeps 解决 outside.
URL_RE = re.compile(r"https?://[^\s()（）<>\"'，。；：！？、“”【】]+")
BOLD_RE = re.compile(r"\*\*(.+?)\*\*")


def plain_answer(text: str) -> str:
    """The answer as a customer reads it: no Markdown markers, links written out, line breaks kept."""
    text = MARKDOWN_LINK_RE.sub(lambda m: f"{m.group(1)} ({m.group(2)})", text)
    text = BOLD_RE.sub(r"\1", text)
    return "\n".join(line.rstrip() for line in text.splitlines()).strip()


def _linked(escaped: str) -> str:
    return URL_RE.sub(lambda m: f'<a href="{m.group(0)}" target="_blank" rel="noopener noreferrer">{m.group(0)}</a>',
                      escaped)


def answer_html(text: str) -> str:
    """The answer as HTML: escaped, bold and links kept, line breaks kept by CSS (white-space: pre-line)."""
    parts = []
    last = 0
    for match in MARKDOWN_LINK_RE.finditer(text):
        parts.append(_linked(html.escape(text[last:match.start()])))
        url = html.escape(match.group(2))
        parts.append(f'<a href="{url}" target="_blank" rel="noopener noreferrer">{html.escape(match.group(1))}</a>')
        last = match.end()
    parts.append(_linked(html.escape(text[last:])))
    return BOLD_RE.sub(r"<strong>\1</strong>", "".join(parts)).strip()
