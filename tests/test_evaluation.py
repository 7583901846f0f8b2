"""The labelled queries, the metrics, and the targets the final system must meet on them."""

from __future__ import annotations

import json

import pytest

from assistant.evaluate import FINAL, NO_RERANK, LabelledQuery, Outcome, load_queries, metrics, run
from assistant.labels import LabelError, heldout_by_hash
from assistant.search import Searcher


@pytest.fixture(scope="module")
def queries(settings, entries):
    return load_queries(settings.eval_queries_path, entries)


def test_the_labelled_set_is_large_varied_and_points_at_real_groups(queries, entries):
    groups = {e.group for e in entries}
    assert len(queries) >= 600
    assert sum(not q.in_corpus and not q.near_miss for q in queries) >= 25
    assert sum(q.near_miss for q in queries) >= 25
    assert {q.lang for q in queries} == {"zh", "en", "mixed"}
    assert {"english", "typo", "code", "api", "changed", "vendor", "ooc", "long_message", "natural_english",
            "near_miss", "colloquial", "short"} <= {q.kind for q in queries}
    assert all(set(q.groups) <= groups and set(q.near) <= groups for q in queries)
    assert len({q.query for q in queries}) == len(queries)


def test_the_split_is_fixed_and_holds_out_at_least_a_third_of_the_new_kinds(queries):
    assert sum(q.split == "heldout" for q in queries) >= 0.3 * len(queries)
    for kind in ("long_message", "natural_english", "near_miss", "out_of_corpus", "colloquial"):  # new kinds only
        of_kind = [q for q in queries if q.kind == kind]
        assert 0.35 <= sum(q.split == "heldout" for q in of_kind) / len(of_kind) <= 0.55


def test_the_hash_split_is_stratified_and_blind_to_order():
    rows = [{"query": f"问题{i}", "kind": "a" if i % 3 else "b"} for i in range(60)]
    split = heldout_by_hash(rows)
    assert split == heldout_by_hash(list(reversed(rows)))
    for kind in ("a", "b"):
        texts = [r["query"] for r in rows if r["kind"] == kind]
        assert abs(sum(split[t] == "heldout" for t in texts) - 0.45 * len(texts)) <= 1


def test_labels_name_entries_and_refuse_a_question_no_entry_asks(tmp_path, entries):
    entry = next(e for e in entries if e.doc == "tencent-sms-faq-2018-pdf" and e.group)
    path = tmp_path / "labelled.jsonl"
    row = {"query": "q", "lang": "zh", "kind": "paraphrase", "answers": [{"doc": "sms-faq-2018-pdf.txt",
           "question": entry.question.rstrip("？?")}], "near": [], "split": "heldout"}
    later = {**row, "query": "r", "answers": [{"doc": "tencent-sms-page-not-added-yet-zh.md", "question": "x"}]}
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in (row, later)) + "\n", encoding="utf-8")
    first, pending = load_queries(path, entries)
    assert first.groups == (entry.group,) and first.split == "heldout" and first.usable
    assert pending.unresolved == ("tencent-sms-page-not-added-yet-zh.md",) and not pending.usable
    row["answers"][0]["question"] = "一个没有人问过的问题"
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(LabelError, match="no entry"):
        load_queries(path, entries)
    path.write_text(json.dumps({**row, "query": 5}) + "\n", encoding="utf-8")
    with pytest.raises(LabelError, match="query must be non-empty text"):
        load_queries(path, entries)


def test_a_pasted_code_is_told_apart_from_an_ask_beside_it(tmp_path, entries):
    about = next(e for e in entries if e.doc == "tencent-sms-faq-2018-pdf" and "1033" in e.question)
    invoice = next(e for e in entries if e.doc == "tencent-sms-faq-2025-pdf" and "发票" in e.question)
    rows = [{"query": "返回1033是怎么回事", "answers": [about]}, {"query": "报了1033，发票去哪里开？", "answers": [invoice]},
            {"query": "发票去哪里开？", "answers": [invoice]}, {"query": "报了1033，能退款到银行卡吗", "answers": []}]
    path = tmp_path / "labelled.jsonl"
    path.write_text("".join(json.dumps({"query": r["query"], "lang": "zh", "kind": "code", "near": [], "answers": [
        {"doc": e.doc, "question": e.question} for e in r["answers"]]}, ensure_ascii=False) + "\n" for r in rows),
        encoding="utf-8")
    assert [q.code_role for q in load_queries(path, entries)] == ["about the code", "beside a code", None, None]


def outcome(groups, rank, abstained=False, partial=False):
    query = LabelledQuery("q", "zh", "paraphrase", None, tuple(groups))
    ranks = [rank] if rank else []
    return Outcome(query, rank, ranks, abstained, 0.5, [], partial=partial)


def test_metrics_on_known_outcomes():
    found = metrics([outcome(["a"], 1), outcome(["b"], 2), outcome(["c"], None), outcome([], None, abstained=True),
                     outcome([], None, abstained=False), outcome(["d"], 1, abstained=True)])
    assert found["recall@1"] == 0.5
    assert found["recall@5"] == 0.75
    assert found["mrr@10"] == pytest.approx((1 + 0.5 + 0 + 1) / 4, abs=1e-4)
    assert found["abstention_recall"] == 0.5
    assert found["abstention_precision"] == 0.5
    assert found["wrongly_abstained"] == 0.25
    assert found["ooc_handled"] == 0.5


def test_out_of_corpus_quoted_under_a_partial_notice_counts_as_handled_not_abstained():
    found = metrics([outcome([], None, abstained=True), outcome([], None, partial=True), outcome([], None)])
    assert found["abstention_recall"] == pytest.approx(1 / 3, abs=1e-4)
    assert found["ooc_handled"] == pytest.approx(2 / 3, abs=1e-4)


def test_on_held_out_queries_the_reranker_beats_the_pipeline_without_it(searcher, queries):
    """Floors under the measured held-out figures: R@1 0.954; codes 99 of 111 (7 of the 12 misses are asks beside a
    pasted code); every query, of any kind, asking about a code the FAQ prints ranked first (60 of 60)."""
    heldout = [q for q in queries if q.split == "heldout" and q.usable]
    without = Searcher(searcher.index, searcher.embedder, searcher.glossary, NO_RERANK.channels, NO_RERANK.fusion)
    final = metrics(run(searcher, heldout))
    baseline = metrics(run(without, heldout))
    codes = metrics(run(searcher, [q for q in heldout if q.kind in ("code", "api")]))
    about_the_code = metrics(run(searcher, [q for q in heldout if q.code_role == "about the code"]))
    assert final["recall@1"] >= baseline["recall@1"] + 0.03 and final["mrr@10"] > baseline["mrr@10"]
    assert final["recall@1"] >= 0.75 and codes["recall@1"] >= 0.85 and about_the_code["recall@1"] >= 0.95
    assert final["wrongly_abstained"] <= 0.04
