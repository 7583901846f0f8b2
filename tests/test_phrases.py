"""Glossary rows and decisive concepts found by a substring precheck, then their own patterns."""

from __future__ import annotations

import re

from assistant.labels import load_queries
from assistant.phrases import PhraseMatcher
from assistant.tokenize import normalize


def test_an_english_phrase_is_a_whole_word_and_overlapping_phrases_are_all_found():
    matcher = PhraseMatcher([("sign", ["sign"]), ("signature", ["短信签名", "signature"]), ("签名", ["签名"])])
    assert matcher.matching(normalize("How long does signature review take?")) == ["signature"]
    assert matcher.matching(normalize("please SIGN here")) == ["sign"]
    assert matcher.matching(normalize("短信签名审核")) == ["signature", "签名"]
    assert matcher.matching(normalize("模板审核")) == []


def test_the_precheck_finds_what_every_pattern_would(settings, entries):
    from assistant.decisive import ASK_FACET, DecisiveWords

    rows = []
    for line in settings.decisive_path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#") and not line.startswith("facet\t"):
            facet, name, phrases = line.split("\t")
            rows.append(((facet, name), [p.strip() for p in phrases.split("|") if p.strip()]))

    def pattern(phrase):
        folded = re.escape(normalize(phrase))
        return rf"(?<![a-z0-9]){folded}(?![a-z0-9])" if phrase.isascii() else folded

    def every_pattern(text):
        folded = normalize(text)
        return {label for label, phrases in rows if any(re.search(pattern(p), folded) for p in phrases)}

    words = DecisiveWords.load(settings.decisive_path)
    texts = [q.query for q in load_queries(settings.eval_queries_path, entries)] + [e.question for e in entries]
    for text in texts:
        found = every_pattern(text)
        assert {(c.facet, c.name) for c in words.concepts(text)} == {f for f in found if f[0] != ASK_FACET}
        assert words.asks(text) == {name for facet, name in found if facet == ASK_FACET}
