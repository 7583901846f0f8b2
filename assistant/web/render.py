"""Markdown for the chat: the quoted entry, its provenance, its editions, related entries."""

from __future__ import annotations

import html
import re

from assistant.editions import answer_diff
from assistant.search import Hit, SearchResult, Searcher

CJK_RE = re.compile(r"[\u4e00-\u9fff]")

LABELS = {
    "zh": {
        "undated": "未注明日期", "lines": "行", "source": "来源", "open": "原文链接", "also": "其他版本",
        "differs": "答案不同", "same": "答案相同", "translation": "译文", "note": "注意", "changes": "查看改动", "related": "相关条目",
        "possibly": "可能相关的条目", "abstain": "没有找到能回答这个问题的 FAQ 条目。",
    },
    "en": {
        "undated": "undated", "lines": "lines", "source": "source", "open": "vendor page", "also": "also in",
        "differs": "answer differs", "same": "same", "translation": "translation", "note": "note", "changes": "what changed", "related": "Related entries",
        "possibly": "Possibly related", "abstain": "No FAQ entry answers this.",
    },
}


def language_of(text: str) -> str:
    return "zh" if CJK_RE.search(text) else "en"


def provenance(hit: Hit, lang: str) -> str:
    entry, labels = hit.entry, LABELS[lang]
    src = entry.source
    parts = [entry.vendor_name, entry.product, entry.edition]
    if entry.section:
        parts.append(entry.section)
    parts.append(entry.updated or labels["undated"])
    parts.append(f"`{src.path}` {labels['lines']} {src.line_start}–{src.line_end}")
    line = " · ".join(html.escape(p) if not p.startswith("`") else p for p in parts)
    if src.url:
        line += f" · [{labels['open']}]({src.url})"
    return line


def quote(hit: Hit, lang: str) -> str:
    """The entry as an agent pastes it: question, answer, then where it comes from."""
    entry = hit.entry
    answer = entry.answer or "(no answer in the document)"
    return f"**{entry.question}**\n\n{answer}\n\n— {provenance(hit, lang)}"


def editions_block(hit: Hit, searcher: Searcher, lang: str) -> str:
    labels = LABELS[lang]
    others = [e for e in hit.entry.editions if e["id"] != hit.entry.id]
    if not others:
        return ""
    items = " · ".join(
        f"{e['edition']} ({labels['translation'] if e.get('translation') else labels['differs'] if e['answer_changed'] else labels['same']})"
        for e in others
    )
    if hit.edition_note:
        items += f"\n\n{labels['note']}: {hit.edition_note}"
    text = f"{labels['also']}: {items}"
    for other in others:
        older = searcher.entry(other["id"])
        if other["answer_changed"] and older is not None:
            diff = answer_diff(hit.entry, older)
            text += f"\n\n<details><summary>{labels['changes']}: {html.escape(older.edition)}</summary>\n\n```diff\n{diff}\n```\n</details>"
    return text


def related_block(hits: list[Hit], lang: str, title_key: str) -> str:
    if not hits:
        return ""
    title = LABELS[lang][title_key]
    parts = [f"**{title}**"]
    for hit in hits:
        body = html.escape(hit.entry.answer[:1200])
        parts.append(
            f"<details><summary>{html.escape(hit.entry.question)}</summary>\n\n{body}\n\n"
            f"— {provenance(hit, lang)}\n</details>"
        )
    return "\n\n".join(parts)


def chat_messages(result: SearchResult, searcher: Searcher, question: str) -> list[str]:
    """Assistant messages for one question: the quote (copyable on its own), then context."""
    lang = language_of(question)
    if not result.hits:
        return [LABELS[lang]["abstain"]]
    if result.abstained:
        return [LABELS[lang]["abstain"] + "\n\n" + related_block(result.hits, lang, "possibly")]
    best, rest = result.hits[0], result.hits[1:]
    messages = [quote(best, lang)]
    context = "\n\n".join(p for p in (editions_block(best, searcher, lang), related_block(rest, lang, "related")) if p)
    if context:
        messages.append(context)
    return messages
