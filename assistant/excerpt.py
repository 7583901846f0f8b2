"""The part of a long pasted message worth searching: the sentence that carries the ask.

A customer's long message is mostly context; what they want is in its question sentence(s). An
error code is a strong signal only when the message asks about it: inside a question sentence, or in
the sentence just before a question that points back at it ("…返回1014错误。请问这个错误怎么处理？").
A code mentioned in passing ("1014 已经解决了") must not outweigh the question actually asked.
"""

from __future__ import annotations

import re

from assistant.tokenize import query_identifiers

SENTENCE_RE = re.compile(r"[^。！？!?；;\n]+[。！？!?；;]*|\n")
CLAUSE_RE = re.compile(r"[^，,、]+[，,、]*")
QUESTION_RE = re.compile(r"[?？]|怎么|如何|为什么|为何|是否|能否|请问|吗|\b(how|why|what|can|does|is)\b", re.I)
# A question that names no topic of its own asks about the sentence before it.
POINTS_BACK_RE = re.compile(r"这个|这种|该|此|上述|以上|\b(this|that|it)\b", re.I)
# What is left of "请问怎么处理？" without its question words: nothing, so it asks about the sentence before.
QUESTION_WORDS_RE = re.compile(r"请问|请|怎么|如何|怎样|为什么|为何|处理|解决|办|呢|吗|一下|应该|可以|"
                               r"\b(how|why|what|do|does|can|should|i|we|fix|solve|it|this)\b|[\W_]", re.I)
LEAD_IN_RE = re.compile(r"^[^：:，,]{1,12}[：:]\s*")  # "现在的问题是：", "My question:"


def _units(text: str, limit: int) -> list[str]:
    """Sentences in reading order; a run-on sentence longer than `limit` is split into its clauses."""
    units = []
    for sentence in (s.strip() for s in SENTENCE_RE.findall(text)):
        if len(sentence) > limit:
            units += [c.strip() for c in CLAUSE_RE.findall(sentence) if c.strip()]
        elif sentence:
            units.append(sentence)
    return units


def _asks(units: list[str]) -> list[list[int]]:
    """Each question, as the units it needs: itself, plus the sentence before when it points back."""
    asks = []
    for i, unit in enumerate(units):
        if not QUESTION_RE.search(unit):
            continue
        if (lead_in := LEAD_IN_RE.match(unit)) and QUESTION_RE.search(unit[lead_in.end():]):
            units[i] = unit = unit[lead_in.end():]
        needs_context = not query_identifiers(unit) and (
            len(QUESTION_WORDS_RE.sub("", unit)) < 2 or POINTS_BACK_RE.search(unit))
        asks.append([i - 1, i] if needs_context and i > 0 else [i])
    return asks


def _take(groups: list[list[int]], units: list[str], limit: int) -> list[int]:
    chosen: list[int] = []
    used = 0
    for group in groups:
        new = [i for i in group if i not in chosen]
        size = sum(len(units[i]) + 1 for i in new)
        if used + size <= limit:
            chosen += new
            used += size
    return sorted(chosen)


def informative_excerpt(text: str, limit: int) -> str:
    """At most `limit` characters of `text`, the sentences worth searching, in reading order.

    A message up to `limit` is returned whole. A longer one keeps its questions (those about an error
    code first, then the later ones: a customer usually asks at the end); a message without a question
    keeps its sentences with error codes or API error names, then the later sentences."""
    if len(text) <= limit:
        return text
    units = _units(text, limit)
    asks = _asks(units)
    if asks:
        about_code = [g for g in asks if any(query_identifiers(units[i]) for i in g)]
        ordered = sorted(about_code, key=lambda g: -g[-1]) + sorted(
            (g for g in asks if g not in about_code), key=lambda g: -g[-1])
    else:
        ordered = [[i] for i in sorted(range(len(units)), key=lambda i: (-bool(query_identifiers(units[i])), -i))]
    chosen = _take(ordered, units, limit)
    if not chosen:  # one unit longer than the limit
        return units[ordered[0][-1]][:limit]
    return " ".join(units[i] for i in chosen)
