"""The part of a long pasted message worth searching: the sentences with an error code or a question."""

from __future__ import annotations

import re

from assistant.tokenize import query_identifiers

SENTENCE_RE = re.compile(r"[^。！？!?；;\n]+[。！？!?；;]*|\n")
CLAUSE_RE = re.compile(r"[^，,、]+[，,、]*")
QUESTION_RE = re.compile(r"[?？]|怎么|如何|为什么|为何|是否|能否|吗|呢|\b(how|why|what|can|does|is)\b", re.I)


def _weight(sentence: str) -> int:
    return 4 * bool(query_identifiers(sentence)) + 2 * bool(QUESTION_RE.search(sentence))


def informative_excerpt(text: str, limit: int) -> str:
    """At most `limit` characters of `text`: its sentences with identifiers or questions first, in reading order.

    A message up to `limit` is returned whole; a longer one keeps the most informative sentences (clauses
    of a run-on sentence)
    (error codes and API error names, then questions, later sentences on ties, as a customer usually
    asks at the end), in their original order."""
    if len(text) <= limit:
        return text
    sentences = []
    for sentence in (s.strip() for s in SENTENCE_RE.findall(text)):
        if len(sentence) > limit:  # one run-on sentence: its clauses are the units
            sentences += [c.strip() for c in CLAUSE_RE.findall(sentence) if c.strip()]
        elif sentence:
            sentences.append(sentence)
    ranked = sorted(range(len(sentences)), key=lambda i: (-_weight(sentences[i]), -i))
    chosen: set[int] = set()
    used = 0
    for i in ranked:
        size = len(sentences[i]) + 1
        if used + size <= limit:
            chosen.add(i)
            used += size
    if not chosen:  # one clause longer than the limit
        return sentences[ranked[0]][:limit]
    return " ".join(sentences[i] for i in sorted(chosen))
