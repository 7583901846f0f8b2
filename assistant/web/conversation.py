"""What the chat adds around a search: follow-ups read with the previous question, honest filters."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from assistant.entry import FaqEntry

VendorNames = Mapping[str, Iterable[str]]  # slug → names and aliases, folded (Searcher.vendor_names)
from assistant.web.labels import LABELS, edition_name, vendor_name

FOLLOW_UP_RE = re.compile(
    r"^\s*(?:那么?|还有|那如果|and|what about|how about|and for|same for)\s*(?P<core>.*?)\s*(?:的呢|呢)?\s*[?？]?\s*$"
    r"|^\s*(?P<core2>.{1,10}?)\s*(?:的呢|呢)\s*[?？]?\s*$",
    re.IGNORECASE,
)
FOLLOW_UP_MAX_CHARS = 24
FILLER_RE = re.compile(r"^(?:for|in|on|with|the|on the)\s+", re.IGNORECASE)


def follow_up_core(text: str) -> str | None:
    """The new part of a short follow-up ("那阿里云呢？" → "阿里云"), or None when `text` stands alone."""
    if len(text) > FOLLOW_UP_MAX_CHARS:
        return None
    match = FOLLOW_UP_RE.match(text)
    if not match:
        return None
    core = FILLER_RE.sub("", (match.group("core") or match.group("core2") or "").strip(" ，,。.?？"))
    return core or None


def named_vendor(text: str, vendor_names: VendorNames) -> str | None:
    folded = text.casefold()
    named = {slug for slug, names in vendor_names.items() if any(n in folded for n in names)}
    return named.pop() if len(named) == 1 else None


def without_vendor_names(text: str, vendor_names: VendorNames) -> str:
    for names in vendor_names.values():
        for name in sorted(names, key=len, reverse=True):
            text = re.sub(re.escape(name), "", text, flags=re.IGNORECASE)
    return " ".join(text.split())


@dataclass
class Reading:
    """How the chat reads one message: the query it searches and the vendor it implies."""

    query: str
    vendor: str | None = None  # a vendor named by a follow-up ("那阿里云呢？")
    previous: str | None = None  # the question a follow-up was read with


def read_message(text: str, previous: str | None, vendor_names: VendorNames) -> Reading:
    core = follow_up_core(text) if previous else None
    if core is None:
        return Reading(text)
    vendor = named_vendor(core, vendor_names)
    rest = without_vendor_names(core, vendor_names) if vendor else core
    base = without_vendor_names(previous, vendor_names) if vendor else previous
    return Reading(" ".join(p for p in (rest, base) if p), vendor, previous)


def edition_choices(entries: list[FaqEntry], vendor: str | None) -> list[tuple[str, str]]:
    """The edition dropdown for one vendor (or all): latest, all, then that vendor's documents."""
    seen: dict[str, str] = {}
    for entry in entries:
        if not vendor or entry.vendor == vendor:
            seen.setdefault(entry.doc, f"{vendor_name(entry.vendor_name, 'en')} · {entry.edition} · "
                                       f"{edition_name(entry.edition, 'zh')}")
    return [("latest 最新版", "latest"), ("all editions 全部版本", "all")] + [(v, k) for k, v in seen.items()]


def filter_conflict(entries: list[FaqEntry], vendor: str | None, edition: str | None, lang: str) -> str | None:
    """Why no entry can match both filters (an edition of another vendor), or None."""
    if not vendor or edition in (None, "", "latest", "all"):
        return None
    doc = next((e for e in entries if e.doc == edition), None)
    if doc is None or doc.vendor == vendor:
        return None
    chosen = next((e.vendor_name for e in entries if e.vendor == vendor), vendor)
    if lang == "zh":
        return (f"版本“{edition_name(doc.edition, lang)}”属于{vendor_name(doc.vendor_name, lang)}，"
                f"而厂商筛选是{vendor_name(chosen, lang)}：没有条目能同时满足两者。")
    return (f"The edition “{doc.edition}” is {vendor_name(doc.vendor_name, lang)}'s, but the vendor filter is "
            f"{vendor_name(chosen, lang)}: no entry can match both.")


def active_filters(entries: list[FaqEntry], vendor: str | None, edition: str | None, lang: str,
                   implied: bool = False) -> dict[str, str]:
    """Label → value of the filters in force, in the answer's language (empty when none narrows the search)."""
    labels = LABELS[lang]
    shown: dict[str, str] = {}
    if vendor:
        name = next((e.vendor_name for e in entries if e.vendor == vendor), vendor)
        shown[labels["vendor"]] = vendor_name(name, lang) + (" ←" if implied else "")
    if edition and edition != "latest":
        doc = next((e for e in entries if e.doc == edition), None)
        shown[labels["edition"]] = labels["all"] if edition == "all" else edition_name(doc.edition if doc else edition,
                                                                                       lang)
    return shown


def hidden_answer_note(entries_question: str, vendor_label: str, lang: str) -> str:
    if lang == "zh":
        return f"在当前筛选下没有条目回答这个问题；不加筛选时，{vendor_label}有一条：“{entries_question}”。"
    return f"With the current filters nothing answers this; without them, {vendor_label} has: “{entries_question}”."
