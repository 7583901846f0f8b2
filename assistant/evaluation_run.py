"""`faq eval`: the final system, the system without its reranker and the baselines, on the labelled
queries' held-out and tuning splits side by side, from one run."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from assistant.abstain import AbstentionModel, save_model
from assistant.config import Settings
from assistant.embed import load_embedder
from assistant.errors import AssistantError
from assistant.evaluate import (
    BASELINES, FINAL, NO_RERANK, Report, breakdown, compare, cross_validated_abstention, load_queries, metrics,
    report_json, run, table, write_report,
)
from assistant.glossary import Glossary
from assistant.index import load_index
from assistant.labels import SPLITS
from assistant.rerank import Reranker
from assistant.search import Searcher


class RememberedQueries:
    """The embedder, with each query text embedded once per run (every configuration asks again)."""

    def __init__(self, embedder) -> None:
        self._embedder = embedder
        self._vectors: dict[str, np.ndarray] = {}
        self.id, self.spec, self.dim = embedder.id, embedder.spec, embedder.dim

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            self._vectors.update(zip(missing, self._embedder.embed_queries(missing)))
        return np.stack([self._vectors[t] for t in texts])

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._embedder.embed_passages(texts)


def run_evaluation(settings: Settings, args: argparse.Namespace) -> int:
    queries_path = args.queries or settings.eval_queries_path
    index = load_index(settings)
    labelled = load_queries(queries_path, index.entries)
    unresolved = [q for q in labelled if not q.usable]
    queries = [q for q in labelled if q.usable]
    embedder = RememberedQueries(load_embedder(index.manifest["embedder"]["spec"]))
    glossary = Glossary.from_settings(settings)
    reranker = Reranker.load(index, glossary)
    if reranker.model is None:
        raise AssistantError("this build has no reranker (no labelled tuning queries at build time): run `faq build`")

    report = Report()
    for config in (FINAL, *BASELINES):
        searcher = Searcher(index, embedder, glossary, config.channels, config.fusion, config.expand,
                            reranker=reranker if config.rerank else None, analysis=config.analysis)
        outcomes = run(searcher, queries)
        if config is NO_RERANK and args.fit_abstention:
            tune = [o for o in outcomes if o.query.split == "tune"]
            model = AbstentionModel.fit([o.evidence for o in tune], [o.query.in_corpus for o in tune],
                                        label=f"{queries_path.name}, tune split, {len(tune)} queries")
            save_model(embedder.id, model)
            print(f"abstention model refitted on {len(tune)} tuning queries, stored for {embedder.id}", file=sys.stderr)
            searcher.abstention = model
            outcomes = run(searcher, queries)
        report.outcomes[config.name] = outcomes
        judged = config.name in (FINAL.name, NO_RERANK.name, BASELINES[1].name)  # others: ranking only
        report.configs[config.name] = {
            "overall": metrics(outcomes, abstention=judged),
            **{split: metrics([o for o in outcomes if o.query.split == split], abstention=judged) for split in SPLITS},
        }
    final = report.outcomes[FINAL.name]
    report.configs[FINAL.name]["breakdown"] = {
        split: breakdown([o for o in final if o.query.split == split]) for split in SPLITS
    }
    cv = reranker.model.info.get("cv")
    extra = {
        "build_id": index.build_id,
        "embedder": embedder.id,
        "queries_file": str(queries_path),
        "unresolved": len(unresolved),
        "rerank_cv": f"{cv}, {reranker.model.info.get('trained_on')}, {reranker.model.info.get('library')}",
    }
    tune = [o for o in report.outcomes[NO_RERANK.name] if o.query.split == "tune"]
    if len({o.query.in_corpus for o in tune}) == 2 and len(tune) >= 20:
        extra["cross_validated_abstention"] = cross_validated_abstention(tune)
    data = report_json(report, FINAL.name, extra)
    if args.compare:
        try:
            old = json.loads(args.compare.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AssistantError(f"cannot read the report to compare with, {args.compare}: {exc}") from exc
        data["compare"] = compare(old, final)
        data["compare_with"] = str(args.compare)

    counts = {split: sum(q.split == split for q in queries) for split in SPLITS}
    print(f"{len(queries)} queries ({counts['heldout']} held out, {counts['tune']} tuning), build {index.build_id}")
    if unresolved:
        docs = sorted({d for q in unresolved for d in q.unresolved})
        print(f"{len(unresolved)} more queries are unresolved (their documents are not in the corpus): {', '.join(docs)}")
    for split, title in (("heldout", "HELD-OUT split (quote these)"), ("tune", "TUNING split (fitted here)")):
        print(f"\n{title}:")
        print("\n".join(table({name: c[split] for name, c in data["configs"].items()}, "system")))
    print(f"\nreranker, grouped CV on the tuning split: {data['rerank_cv']}")
    cv = data.get("cross_validated_abstention")
    if cv:
        print(f"abstention without rerank, {cv['folds']}-fold CV on tune: precision {cv['abstention_precision']:.3f}, "
              f"recall {cv['abstention_recall']:.3f}, in-corpus wrongly abstained {cv['wrongly_abstained']:.3f}")
    for split in SPLITS[::-1]:
        for facet, rows in data["configs"][FINAL.name]["breakdown"][split].items():
            print(f"\nfinal system by {facet}, {split}:")
            print("\n".join(table(rows, facet)))
    if "compare" in data:
        for direction in ("better", "worse"):
            print(f"\n{direction} than {args.compare}: {len(data['compare'][direction])}")
            for change in data["compare"][direction]:
                print(f"  {change['query']}: rank {change['before']['rank']} → {change['after']['rank']}, "
                      f"abstained {change['before']['abstained']} → {change['after']['abstained']}")
    if args.report:
        paths = write_report(args.report, data)
        print("\nreport: " + ", ".join(str(p) for p in paths))
    return 0
