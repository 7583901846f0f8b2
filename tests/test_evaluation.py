"""The labelled queries, the metrics, and the targets the final system must meet on them."""

from __future__ import annotations

import pytest

from assistant.evaluate import FINAL, LabelledQuery, Outcome, load_queries, metrics, run
from assistant.search import Searcher


@pytest.fixture(scope="module")
def queries(settings):
    return load_queries(settings.eval_queries_path)


def test_the_labelled_set_is_large_varied_and_points_at_real_groups(queries, entries):
    groups = {e.group for e in entries}
    assert len(queries) >= 200
    assert sum(not q.in_corpus for q in queries) >= 25
    assert {q.lang for q in queries} == {"zh", "en", "mixed"}
    assert {"english", "typo", "code", "api", "changed", "vendor", "ooc"} <= {q.kind for q in queries}
    assert all(set(q.groups) <= groups for q in queries)
    assert len({q.query for q in queries}) == len(queries)


def outcome(groups, rank, abstained=False):
    query = LabelledQuery("q", "zh", "paraphrase", None, tuple(groups))
    ranks = [rank] if rank else []
    return Outcome(query, rank, ranks, abstained, 0.5, [])


def test_metrics_on_known_outcomes():
    found = metrics([outcome(["a"], 1), outcome(["b"], 2), outcome(["c"], None), outcome([], None, abstained=True),
                     outcome([], None, abstained=False), outcome(["d"], 1, abstained=True)])
    assert found["recall@1"] == 0.5
    assert found["recall@5"] == 0.75
    assert found["mrr@10"] == pytest.approx((1 + 0.5 + 0 + 1) / 4, abs=1e-4)
    assert found["abstention_recall"] == 0.5
    assert found["abstention_precision"] == 0.5
    assert found["wrongly_abstained"] == 0.25


def test_the_final_system_meets_the_targets_on_the_labelled_set(searcher, queries):
    final = Searcher(searcher.index, searcher.embedder, searcher.glossary, FINAL.channels, FINAL.fusion)
    outcomes = run(final, queries)
    overall = metrics(outcomes)
    english = metrics([o for o in outcomes if o.query.lang == "en"])
    codes = metrics([o for o in outcomes if o.query.kind in ("code", "api")])
    assert overall["recall@1"] >= 0.95
    assert overall["mrr@10"] >= 0.97
    assert english["recall@1"] >= 0.92
    assert codes["recall@1"] == 1.0
    assert overall["abstention_recall"] >= 0.90
    assert overall["wrongly_abstained"] <= 0.03
