"""HTML for one chat turn: the quote first (copyable as plain text), then its context, collapsed.

Everything that comes from the corpus or the agent is escaped here; the only markup is ours.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from assistant.entry import FaqEntry
from assistant.search import Hit, SearchResult
from assistant.web.answer_text import answer_html, plain_answer
from assistant.web.edition_view import diff_html, edition_relation, newest_dated
from assistant.web.labels import LABELS, edition_name, language_of, vendor_name

LETTER_RE = re.compile(r"[A-Za-z\u4e00-\u9fff]")


@dataclass
class Turn:
    """What one answer shows besides the search result itself."""

    question: str
    answer_id: str
    filters: dict[str, str] = field(default_factory=dict)  # label → value, the active filters
    notices: list[str] = field(default_factory=list)
    widen: str | None = None  # "the filter hides an answer" explanation, with a widen button
    handover: str = ""
    handover_url: str | None = None
    source_base: str = ""  # relative path to the app root, for "view source lines"
    warning: str | None = None  # shown on top of the quote: an answer from another vendor than the filter's


def citation(entry: FaqEntry, lang: str) -> str:
    """One line naming where the answer comes from, with the vendor's URL when the document gives one."""
    labels = LABELS[lang]
    where = f"{vendor_name(entry.vendor_name, lang)} {entry.product} · {edition_name(entry.edition, lang)}"
    if entry.updated:
        where += f" ({entry.updated})"
    return f"{labels['source']}: {where}" + (f" {entry.source.url}" if entry.source.url else "")


def _source_links(entry: FaqEntry, turn: Turn, lang: str) -> str:
    labels = LABELS[lang]
    links = []
    if entry.source.url:
        url = html.escape(entry.source.url)
        links.append(f'<a class="faq-vendor-link" href="{url}" target="_blank" rel="noopener noreferrer">'
                     f'{labels["open"]} ↗</a>')
    lines = labels["view_lines"].format(lines=f"{entry.source.line_start}–{entry.source.line_end}")
    links.append(f'<a class="faq-source-link" href="{turn.source_base}source/{html.escape(entry.id)}" '
                 f'target="_blank" rel="noopener">{lines}</a>')
    return "".join(links)


def provenance_html(entry: FaqEntry, turn: Turn, lang: str) -> str:
    """Where the answer comes from, citable: vendor, product, edition, date, then the source links."""
    labels = LABELS[lang]
    parts = [vendor_name(entry.vendor_name, lang), entry.product, edition_name(entry.edition, lang)]
    if entry.updated:
        parts.append(entry.updated)
    elif labels["undated"] not in edition_name(entry.edition, lang):
        parts.append(labels["undated"])
    if entry.section:
        parts.append(entry.section)
    cite = " · ".join(html.escape(p) for p in parts)
    return (f'<div class="faq-provenance"><span class="faq-cite">{cite}</span>'
            f'<span class="faq-links">{_source_links(entry, turn, lang)}</span></div>')


def _copy_data(entry: FaqEntry, lang: str) -> tuple[str, str]:
    plain = plain_answer(entry.answer) or LABELS[lang]["no_answer"]
    return plain, f"{plain}\n\n{citation(entry, lang)}"


def _edition_notes(entry: FaqEntry, newest: FaqEntry | None, lang: str) -> tuple[str, str]:
    """When the editions' answers differ: a "newest" badge for the title, or a note naming the newest."""
    if newest is None:
        return "", ""
    labels = LABELS[lang]
    if newest.id == entry.id:
        return f' <span class="faq-badge faq-newest">{labels["newest_badge"]}</span>', ""
    which = f"{edition_name(newest.edition, lang)}{'，' if lang == 'zh' else ', '}{newest.updated}"
    return "", f'<div class="faq-warning faq-older" role="note">{html.escape(labels["older"].format(newest=which))}</div>'


def _vote_button(value: str, label: str, arrow: str) -> str:
    return (f'<button type="button" class="faq-vote" data-vote="{value}" aria-pressed="false">'
            f'<span aria-hidden="true">{arrow}</span> {label}</button>')


def quote_html(hit: Hit, turn: Turn, lang: str, newest: FaqEntry | None = None, partial: str | None = None) -> str:
    """The quote as its own message: warnings (a partial match says what the entry does not cover), question,
    the whole answer, copy and vote buttons, the source."""
    entry, labels = hit.entry, LABELS[lang]
    plain, cited = _copy_data(entry, lang)
    answer = answer_html(entry.answer) if entry.answer.strip() else html.escape(labels["no_answer"])
    warning = f'<div class="faq-warning" role="alert">⚠ {html.escape(turn.warning)}</div>' if turn.warning else ""
    if partial:
        warning += f'<div class="faq-warning faq-partial" role="note">⚠ {html.escape(partial)}</div>'
    badge, older = _edition_notes(entry, newest, lang)
    return (
        f'<article class="faq-quote" lang="{lang}" data-entry="{html.escape(entry.id)}">{warning}{older}'
        f'<div class="faq-quote-question">{html.escape(entry.question)}{badge}</div>'
        f'<div class="faq-answer">{answer}</div>'
        f'<textarea class="faq-plain" hidden readonly>{html.escape(plain)}</textarea>'
        f'<textarea class="faq-cited" hidden readonly>{html.escape(cited)}</textarea>'
        f'<div class="faq-actions">'
        f'<button type="button" class="faq-copy" data-copy="plain">{labels["copy"]}</button>'
        f'<button type="button" class="faq-copy" data-copy="cited">{labels["copy_cited"]}</button>'
        f'<span class="faq-votes">{_vote_button("1", labels["helpful"], "▲")}'
        f'{_vote_button("-1", labels["unhelpful"], "▼")}</span></div>'
        f'<div class="faq-status" role="status"></div>'
        f'{provenance_html(entry, turn, lang)}'
        f'<form class="faq-why" hidden><label>{labels["why"]}<textarea maxlength="2000" rows="2"></textarea></label>'
        f'<button type="submit">{labels["send"]}</button></form>'
        f'{filters_html(turn, lang)}</article>'
    )


def filters_html(turn: Turn, lang: str) -> str:
    """The filters this answer was found under, so a narrowed answer never passes for the whole FAQ's."""
    if not turn.filters:
        return ""
    active = " · ".join(f"{html.escape(k)}: {html.escape(v)}" for k, v in turn.filters.items())
    return f'<div class="faq-filters-note">{LABELS[lang]["filters"]}: {active}</div>'



def editions_html(hit: Hit, entries: dict[str, FaqEntry], turn: Turn, lang: str,
                  newest: FaqEntry | None = None) -> str:
    """Every other edition of the quoted question, named, with how its answer differs from the one shown;
    open when an older edition is shown and the newest one differs."""
    labels = LABELS[lang]
    shown = hit.entry
    items = []
    for other_id in (e["id"] for e in shown.editions if e["id"] != shown.id):
        other = entries.get(other_id)
        if other is None:
            continue
        relation = edition_relation(shown, other)
        when = f" ({other.updated})" if other.updated else ""
        body = diff_html(shown, other, lang) if relation not in ("same", "translation") else ""
        badge = f' <span class="faq-badge faq-newest">{labels["newest_badge"]}</span>' \
            if newest is not None and newest.id == other.id else ""
        items.append(
            f'<details class="faq-edition" data-relation="{relation}"><summary>'
            f'<span class="faq-edition-name">{html.escape(edition_name(other.edition, lang))}{html.escape(when)}'
            f'</span> — <span class="faq-relation faq-{relation}">{labels[relation]}</span>'
            f'{badge}</summary>{body}{provenance_html(other, turn, lang)}</details>'
        )
    if not items:
        return ""
    if hit.edition_note:
        items.insert(0, f'<div class="faq-edition-note">{labels["note"]}: {html.escape(hit.edition_note)}</div>')
    title = labels["editions"].format(edition=html.escape(edition_name(shown.edition, lang)), n=len(items))
    state = " open" if newest is not None and newest.id != shown.id else ""
    return f'<details class="faq-context faq-editions"{state}><summary>{title}</summary>{"".join(items)}</details>'


def related_html(hits: list[Hit], turn: Turn, lang: str, title_key: str, open_: bool = False) -> str:
    """Other entries, each named with its vendor and edition, its answer folded."""
    if not hits:
        return ""
    labels = LABELS[lang]
    items = []
    for hit in hits:
        entry = hit.entry
        edition = f"{vendor_name(entry.vendor_name, lang)} · {edition_name(entry.edition, lang)}"
        items.append(
            f'<details class="faq-related-entry"><summary>{html.escape(entry.question)} '
            f'<span class="faq-edition-name">({html.escape(edition)})</span></summary>'
            f'<div class="faq-answer">{answer_html(entry.answer)}</div>'
            f'{provenance_html(entry, turn, lang)}</details>'
        )
    state = " open" if open_ else ""
    return (f'<details class="faq-context faq-related"{state}><summary>{labels[title_key]} ({len(items)})</summary>'
            f'{"".join(items)}</details>')


def _notices_html(turn: Turn) -> str:
    return "".join(f'<div class="faq-notice" role="note">{html.escape(n)}</div>' for n in turn.notices)


def next_steps_html(turn: Turn, lang: str) -> str:
    """What to do when nothing answers: rephrase, widen the filters, hand over to a person."""
    labels = LABELS[lang]
    steps = [f"<li>{labels['rephrase']}</li>"]
    if turn.widen:
        steps.append(f'<li>{html.escape(turn.widen)} <button type="button" class="faq-widen">{labels["widen"]}'
                     f'</button></li>')
    elif turn.filters:
        steps.append(f'<li><button type="button" class="faq-widen">{labels["widen"]}</button></li>')
    handover = html.escape(turn.handover or labels["handover"])
    if turn.handover_url:
        url = html.escape(turn.handover_url)
        handover = f'<a href="{url}" target="_blank" rel="noopener noreferrer">{handover}</a>'
    steps.append(f'<li class="faq-handover">{handover}</li>')
    return f'<div class="faq-next"><div>{labels["next"]}</div><ul>{"".join(steps)}</ul></div>'


def turn_language(result: SearchResult, question: str) -> str:
    """One label language per turn: the answer's; without one, the question's (a bare code: the entries')."""
    if result.hits and (not result.abstained or not LETTER_RE.search(question)):
        best = result.hits[0].entry
        return language_of(best.answer or best.question)
    return language_of(question)


def turn_html(result: SearchResult, entries: dict[str, FaqEntry], turn: Turn) -> str:
    """One whole turn: the agent's question, notices, then the quote (or the next steps), then context."""
    answered = bool(result.hits) and not result.abstained
    lang = turn_language(result, turn.question)
    labels = LABELS[lang]
    parts = [f'<section class="faq-turn" data-answer="{html.escape(turn.answer_id)}" lang="{lang}">',
             f'<div class="faq-asked">{html.escape(turn.question)}</div>', _notices_html(turn)]
    if answered:
        best = result.hits[0]
        if turn.widen:
            parts.append(f'<div class="faq-notice">{html.escape(turn.widen)} '
                         f'<button type="button" class="faq-widen">{labels["widen"]}</button></div>')
        newest = newest_dated(best.entry, entries)
        parts.append(quote_html(best, turn, lang, newest, result.partial))
        parts.append(editions_html(best, entries, turn, lang, newest))
        parts.append(related_html(result.hits[1:], turn, lang, "related"))
    else:
        parts.append(f'<article class="faq-quote faq-abstain" lang="{lang}">'
                     f'<div class="faq-quote-question">{labels["abstain"]}</div>{next_steps_html(turn, lang)}'
                     f'{filters_html(turn, lang)}</article>')
        parts.append(related_html(result.hits, turn, lang, "possibly"))
    parts.append("</section>")
    return "".join(parts)


def message_html(question: str, text: str, turn_id: str = "") -> str:
    """A turn that is only a message (an error the agent can fix, a filter conflict)."""
    lang = language_of(question)
    return (f'<section class="faq-turn" data-answer="{html.escape(turn_id)}" lang="{lang}">'
            f'<div class="faq-asked">{html.escape(question)}</div>'
            f'<article class="faq-quote faq-message">{text}</article></section>')


def reply_text(result: SearchResult, question: str) -> str:
    """The reply as plain text, for the API's chat endpoint: the quote with its citation, then related questions."""
    lang = turn_language(result, question)
    labels = LABELS[lang]
    lines = list(result.notices)
    answered = bool(result.hits) and not result.abstained
    if answered:
        best = result.hits[0].entry
        if result.partial:
            lines.append(f"⚠ {result.partial}")
        lines += [best.question, "", _copy_data(best, lang)[1]]
    else:
        lines.append(labels["abstain"])
    others = result.hits[1:] if answered else result.hits
    if others:
        lines += ["", f"{labels['related' if answered else 'possibly']}:"]
        lines += [f"- {hit.entry.question} ({citation(hit.entry, lang)})" for hit in others]
    return "\n".join(lines)
