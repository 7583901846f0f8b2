"""`faq build` says what changed since the previous build."""

from __future__ import annotations

import dataclasses

from assistant.build_report import compare

PAGES = ("tencent-markdown-faq-pages-zh", "tencent-markdown-faq-pages-en-international-site")


def test_adding_the_pages_is_reported_as_new_entries_and_links(entries):
    before = [e for e in entries if e.doc not in PAGES]
    report = compare(before, entries)
    assert (len(report.new), len(report.removed), len(report.changed)) == (69, 0, 0)
    linked = {(a.question, b.question) for a, b in report.new_links}
    assert ("返回1014错误如何处理？", "What can I do if a 1014 error is returned?") in linked
    assert all(a.doc in PAGES or b.doc in PAGES for a, b in report.new_links)
    assert report.lines()[0].startswith("since the previous build: 69 new, 0 removed, 0 changed entries;")


def test_a_changed_or_emptied_answer_is_named(entries):
    before = entries[:3]
    now = [dataclasses.replace(before[0], answer=""), before[1], dataclasses.replace(before[2], group="g-other")]
    report = compare(before, now)
    assert [n.id for _, n in report.changed] == [before[0].id, before[2].id]
    lines = "\n".join(report.lines())
    assert f"warning: the answer of “{before[0].question}”" in lines and "group " in lines
    assert compare(None, now).lines() == ["no previous build to compare with"]
