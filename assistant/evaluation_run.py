"""`faq eval`: run the final system and its baselines on the labelled queries, print and report."""

from __future__ import annotations

import argparse
import json
import sys

from assistant.abstain import AbstentionModel, save_model
from assistant.config import Settings
from assistant.embed import load_embedder
from assistant.errors import AssistantError
from assistant.evaluate import (
    BASELINES, FINAL, Report, breakdown, compare, cross_validated_abstention, load_queries, metrics, report_json,
    run, table, write_report,
)
from assistant.glossary import Glossary
from assistant.index import load_index
from assistant.search import Searcher


def run_evaluation(settings: Settings, args: argparse.Namespace) -> int:
    queries_path = args.queries or settings.eval_queries_path
    queries = load_queries(queries_path)
    index = load_index(settings)
    embedder = load_embedder(index.manifest["embedder"]["spec"])
    glossary = Glossary.load(settings.glossary_path)
    known_groups = {e.group for e in index.entries}
    if unknown := sorted({g for q in queries for g in q.groups} - known_groups):
        raise AssistantError(f"{queries_path}: labels name edition groups the index does not have: {unknown[:5]}")

    report = Report()
    for config in (FINAL, *BASELINES):
        searcher = Searcher(index, embedder, glossary, config.channels, config.fusion, config.expand)
        outcomes = run(searcher, queries)
        if config is FINAL and args.fit_abstention:
            model = AbstentionModel.fit([o.evidence for o in outcomes], [o.query.in_corpus for o in outcomes],
                                        label=f"{queries_path.name}, {len(queries)} queries")
            save_model(embedder.id, model)
            print(f"abstention model refitted on {len(queries)} queries and stored for {embedder.id}", file=sys.stderr)
            searcher = Searcher(index, embedder, glossary, config.channels, config.fusion, config.expand, model)
            outcomes = run(searcher, queries)
        report.outcomes[config.name] = outcomes
        # Abstention is fitted to the final system's evidence: baselines are judged on ranking only.
        report.configs[config.name] = {"overall": metrics(outcomes, abstention=config is FINAL)}
    final = report.outcomes[FINAL.name]
    report.configs[FINAL.name]["breakdown"] = breakdown(final)

    extra = {
        "build_id": index.build_id,
        "embedder": embedder.id,
        "queries_file": str(queries_path),
        "cross_validated_abstention": cross_validated_abstention(final),
    }
    data = report_json(report, FINAL.name, extra)
    if args.compare:
        try:
            old = json.loads(args.compare.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AssistantError(f"cannot read the report to compare with, {args.compare}: {exc}") from exc
        data["compare"] = compare(old, final)
        data["compare_with"] = str(args.compare)

    print(f"{len(queries)} queries ({sum(q.in_corpus for q in queries)} in corpus), build {index.build_id}\n")
    print("\n".join(table({name: c["overall"] for name, c in data["configs"].items()}, "system")))
    cv = data["cross_validated_abstention"]
    print(f"\nabstention, {cv['folds']}-fold cross-validated: precision {cv['abstention_precision']:.3f}, "
          f"recall {cv['abstention_recall']:.3f}, in-corpus wrongly abstained {cv['wrongly_abstained']:.3f}")
    for facet, rows in data["configs"][FINAL.name]["breakdown"].items():
        print(f"\nfinal system by {facet}:")
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
