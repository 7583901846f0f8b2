"""Offline evaluation: labelled queries → Recall@k, MRR, nDCG, abstention, per language/kind/vendor.

Every run scores the final system and its baselines side by side, on the same queries.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.abstain import AbstentionModel, Evidence
from assistant.errors import AssistantError
from assistant.labels import LabelledQuery, load_queries  # noqa: F401  (re-exported)
from assistant.search import Searcher

DEPTH = 10


@dataclass(frozen=True)
class Config:
    name: str
    channels: tuple[str, ...]
    fusion: str = "rrf"
    expand: bool = True
    rerank: bool = False
    analysis: bool = True


FINAL = Config("final: analysis + channels + rerank", ("exact", "bm25", "dense"), fusion="score", rerank=True)
NO_RERANK = Config("without rerank: analysis + exact + BM25 + dense", ("exact", "bm25", "dense"), fusion="score")
BASELINES = (
    NO_RERANK,
    Config("previous system: no analysis, no rerank", ("exact", "bm25", "dense"), fusion="score", analysis=False),
    Config("BM25 alone", ("bm25",), expand=False),
    Config("dense alone", ("dense",)),
    Config("BM25 + dense, no glossary, no exact", ("bm25", "dense"), fusion="score", expand=False),
    Config("final channels, RRF fusion", ("exact", "bm25", "dense"), fusion="rrf"),
)


@dataclass
class Outcome:
    query: LabelledQuery
    rank: int | None  # 1-based rank of the first relevant group within DEPTH
    ranks: list[int]  # ranks of all relevant groups found within DEPTH
    abstained: bool
    confidence: float
    top: list[str]  # groups returned, best first
    evidence: Evidence | None = None
    partial: bool = False  # flagged: the best entry covers the topic, not the ask


@dataclass
class Report:
    configs: dict[str, dict] = field(default_factory=dict)
    outcomes: dict[str, list[Outcome]] = field(default_factory=dict)


def run(searcher: Searcher, queries: list[LabelledQuery]) -> list[Outcome]:
    outcomes = []
    for labelled in queries:
        result, evidence = searcher.search_with_evidence(labelled.query, top_k=DEPTH)
        top = [hit.entry.group or hit.entry.id for hit in result.hits]
        ranks = [i for i, group in enumerate(top, 1) if group in labelled.groups]
        outcomes.append(
            Outcome(labelled, ranks[0] if ranks else None, ranks, result.abstained, result.confidence, top, evidence,
                    result.partial is not None)
        )
    return outcomes


def metrics(outcomes: list[Outcome], abstention: bool = True) -> dict:
    answerable = [o for o in outcomes if o.query.in_corpus]
    unanswerable = [o for o in outcomes if not o.query.in_corpus and not o.query.near_miss]
    near = [o for o in outcomes if o.query.near_miss]
    data: dict = {"queries": len(outcomes), "in_corpus": len(answerable), "out_of_corpus": len(unanswerable),
                  "near_misses": len(near)}
    if answerable:
        data["recall@1"] = _mean(o.rank == 1 for o in answerable)
        data["recall@5"] = _mean(o.rank is not None and o.rank <= 5 for o in answerable)
        data["mrr@10"] = _mean(1 / o.rank if o.rank else 0.0 for o in answerable)
        data["ndcg@10"] = _mean(_ndcg(o) for o in answerable)
        if abstention:
            data["answered@1"] = _mean(o.rank == 1 and not o.abstained for o in answerable)
            data["wrongly_abstained"] = _mean(o.abstained for o in answerable)
            data["answerable_partial"] = _mean(o.partial and not o.abstained for o in answerable)
    if not abstention:
        return data
    abstained = [o for o in outcomes if o.abstained]
    data["abstention_precision"] = _mean(not o.query.in_corpus for o in abstained) if abstained else None
    data["abstention_recall"] = _mean(o.abstained for o in unanswerable) if unanswerable else None
    data["ooc_handled"] = _mean(o.abstained or o.partial for o in unanswerable) if unanswerable else None
    data["near_handled"] = _mean(o.abstained or o.partial for o in near) if near else None
    return data


def breakdown(outcomes: list[Outcome]) -> dict[str, dict[str, dict]]:
    tables: dict[str, dict[str, dict]] = {}
    for facet in ("lang", "kind", "vendor", "code_role"):
        buckets: dict[str, list[Outcome]] = defaultdict(list)
        for outcome in outcomes:
            value = getattr(outcome.query, facet)
            if value is not None or facet != "code_role":  # the role of a code: queries pasting one only
                buckets[str(value or "none")].append(outcome)
        tables[facet] = {name: metrics(items) for name, items in sorted(buckets.items())}
    return tables


def _mean(values) -> float:
    values = list(values)
    return round(float(np.mean(values)), 4) if values else 0.0


def _ndcg(outcome: Outcome) -> float:
    dcg = sum(1 / math.log2(rank + 1) for rank in outcome.ranks)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(outcome.query.groups), DEPTH)))
    return dcg / ideal if ideal else 0.0


def cross_validated_abstention(outcomes: list[Outcome], folds: int = 5, seed: int = 7) -> dict:
    """Abstention figures where every query is judged by a model fitted without it."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(outcomes))
    judged: list[tuple[Outcome, bool]] = []
    for fold in range(folds):
        held = set(order[fold::folds].tolist())
        train = [o for i, o in enumerate(outcomes) if i not in held]
        model = AbstentionModel.fit([o.evidence for o in train], [o.query.in_corpus for o in train])
        judged += [(outcomes[i], model.confidence(outcomes[i].evidence) < model.threshold) for i in sorted(held)]
    answerable = [a for o, a in judged if o.query.in_corpus]
    unanswerable = [a for o, a in judged if not o.query.in_corpus]
    abstained = [o for o, a in judged if a]
    return {
        "folds": folds,
        "abstention_precision": _mean(not o.query.in_corpus for o in abstained),
        "abstention_recall": _mean(unanswerable),
        "wrongly_abstained": _mean(answerable),
    }


def compare(old: dict, new_outcomes: list[Outcome]) -> dict[str, list[dict]]:
    """Per query, what got better or worse since an earlier JSON report."""
    before = {q["query"]: q for q in old.get("queries", [])}
    better, worse = [], []
    for outcome in new_outcomes:
        then = before.get(outcome.query.query)
        if then is None:
            continue
        now = _query_json(outcome)
        old_score, new_score = _quality(then), _quality(now)
        change = {"query": outcome.query.query, "before": then, "after": now}
        if new_score > old_score:
            better.append(change)
        elif new_score < old_score:
            worse.append(change)
    return {"better": better, "worse": worse}


def _quality(item: dict) -> float:
    if not item["groups"]:
        return 1.0 if item["abstained"] else 0.0
    return (1 / item["rank"] if item["rank"] else 0.0) - (0.5 if item["abstained"] else 0.0)


def _query_json(outcome: Outcome) -> dict:
    return {
        "query": outcome.query.query,
        "lang": outcome.query.lang,
        "kind": outcome.query.kind,
        "code_role": outcome.query.code_role,
        "split": outcome.query.split,
        "groups": list(outcome.query.groups),
        "near": list(outcome.query.near),
        "partial": outcome.partial,
        "rank": outcome.rank,
        "abstained": outcome.abstained,
        "confidence": round(outcome.confidence, 4),
        "top": outcome.top[:3],
    }


def report_json(report: Report, final_name: str, extra: dict) -> dict:
    return {
        **extra,
        "configs": report.configs,
        "final": final_name,
        "queries": [_query_json(o) for o in report.outcomes[final_name]],
    }


def write_report(directory: Path, data: dict) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / "eval.json", directory / "eval.md", directory / "eval.png"]
    paths[0].write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    paths[1].write_text(markdown(data), encoding="utf-8")
    _plot(data, paths[2])
    return paths


METRIC_COLUMNS = ("recall@1", "recall@5", "mrr@10", "ndcg@10", "answered@1", "wrongly_abstained",
                  "answerable_partial", "abstention_precision", "abstention_recall", "ooc_handled", "near_handled")


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def table(rows: dict[str, dict], first: str) -> list[str]:
    lines = [f"| {first} | n | " + " | ".join(METRIC_COLUMNS) + " |", "|---" * (len(METRIC_COLUMNS) + 2) + "|"]
    for name, m in rows.items():
        lines.append(f"| {name} | {m['queries']} | " + " | ".join(_fmt(m.get(c)) for c in METRIC_COLUMNS) + " |")
    return lines


def markdown(data: dict) -> str:
    final = data["final"]
    lines = [
        "# Retrieval evaluation",
        "",
        f"Index build `{data.get('build_id')}`, embedder `{data.get('embedder')}`, "
        f"{data['configs'][final]['overall']['queries']} queries from `{data.get('queries_file')}`.",
        "",
        "## Held-out split: final system and baselines (same run; nothing was fitted on these queries)",
        "",
        *table({name: c["heldout"] for name, c in data["configs"].items()}, "system"),
        "",
        "## Tuning split (the reranker and thresholds were fitted here: in-sample for the final system)",
        "",
        *table({name: c["tune"] for name, c in data["configs"].items()}, "system"),
    ]
    if "rerank_cv" in data:
        lines += ["", f"Reranker, grouped cross-validation on the tuning split: {data['rerank_cv']}."]
    if "cross_validated_abstention" in data:
        cv = data["cross_validated_abstention"]
        lines += ["", f"Abstention, {cv['folds']}-fold cross-validated: precision {_fmt(cv['abstention_precision'])}, "
                  f"recall {_fmt(cv['abstention_recall'])}, in-corpus wrongly abstained {_fmt(cv['wrongly_abstained'])}."]
    for split in ("heldout", "tune"):
        for facet, rows in data["configs"][final]["breakdown"][split].items():
            lines += ["", f"## Final system by {facet}, {split} split", "", *table(rows, facet)]
    # Held-out misses are not listed: reading them would be tuning on them.
    misses = [q for q in data["queries"] if q["split"] == "tune" and (
        (q["groups"] and q["rank"] != 1) or (q["groups"] and q["abstained"])
        or (not q["groups"] and not q["abstained"] and not q["partial"]))]
    lines += ["", f"## Misses of the final system on the tuning split ({len(misses)})", ""]
    lines += [f"- `{q['query']}` ({q['kind']}): rank {q['rank']}, abstained {q['abstained']}, "
              f"confidence {q['confidence']}" for q in misses]
    if "compare" in data:
        for direction in ("better", "worse"):
            changes = data["compare"][direction]
            lines += ["", f"## {direction.capitalize()} than {data['compare_with']} ({len(changes)})", ""]
            lines += [f"- `{c['query']}`: rank {c['before']['rank']} → {c['after']['rank']}, abstained "
                      f"{c['before']['abstained']} → {c['after']['abstained']}" for c in changes]
    return "\n".join(lines) + "\n"


def _plot(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(data["configs"])
    shown = ("recall@1", "recall@5", "mrr@10", "ndcg@10")
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        values = [data["configs"][name]["overall"].get(m) or 0 for m in shown]
        ax.bar(np.arange(len(shown)) + i * width, values, width, label=name)
    ax.set_xticks(np.arange(len(shown)) + width * (len(names) - 1) / 2, shown)
    ax.set_ylim(0, 1.05)
    ax.set_title("Retrieval on the labelled queries: final system and baselines")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
