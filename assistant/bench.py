"""`faq bench --quick`: warm search latency beside the bare query-embedding time, same run, on one thread
(BLAS and OpenMP pools limited to one, as each of a server's workers runs), with the machine's load average."""

from __future__ import annotations

import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

from assistant.config import Settings
from assistant.evaluate import load_queries
from assistant.search import open_searcher


QUICK_QUERIES = 200


def _p95(samples: list[float]) -> float:
    return float(np.percentile(samples, 95))


def _analysis_and_rerank_ms(searcher, query: str) -> float | None:
    """The time query analysis and the rerank stage (features, model, verdict, partial notice) add to one search."""
    if searcher.reranker is None or searcher.reranker.model is None:
        return None
    analysed, candidates, named = searcher.candidates(query)
    searcher.reranker.data.forget_queries()
    started = time.perf_counter()
    searcher.analyse(query)
    ranked = searcher.reranker.rerank(analysed, candidates, named)
    if ranked:
        searcher.reranker.judge(ranked)
        searcher.reranker.partial_notice(analysed, ranked[0])
    return (time.perf_counter() - started) * 1000


def _load_average() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def run_bench(settings: Settings, quick: bool = False) -> int:
    with threadpool_limits(limits=1):
        return _bench(settings, quick)


def _bench(settings: Settings, quick: bool) -> int:
    searcher = open_searcher(settings)
    queries = [q.query for q in load_queries(settings.eval_queries_path, searcher.index.entries)]
    rounds = 1 if quick else 5
    if quick:  # an even sample of every kind of query, short and long
        queries = queries[:: max(1, len(queries) // QUICK_QUERIES)]
    searcher.search(queries[0])  # warm: model, jieba, caches
    load_before = _load_average()
    embed_ms, search_ms, stage_ms = [], [], []
    for _ in range(rounds):
        for query in queries:
            # Interleaved, so all see the same machine load.
            started = time.perf_counter()
            searcher.embedder.embed_queries([query])
            embed_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            searcher.search(query)
            search_ms.append((time.perf_counter() - started) * 1000)
            stage_ms.append(_analysis_and_rerank_ms(searcher, query))
    ratio = _p95(search_ms) / _p95(embed_ms)
    print(f"{len(search_ms)} warm searches over {len(queries)} queries, index {searcher.index.build_id}, one thread")
    print(f"load average (1, 5, 15 min) on {os.cpu_count()} cores: {load_before} before, {_load_average()} after")
    print(f"{'':24}{'p50 ms':>10}{'p95 ms':>10}")
    print(f"{'query embedding only':24}{np.median(embed_ms):10.2f}{_p95(embed_ms):10.2f}")
    print(f"{'full search':24}{np.median(search_ms):10.2f}{_p95(search_ms):10.2f}")
    if stage_ms[0] is not None:
        print(f"{'analysis + rerank':24}{np.median(stage_ms):10.2f}{_p95(stage_ms):10.2f}   (goal: p95 ≤ 5 ms)")
    print(f"p95 ratio search / embedding: {ratio:.2f} (goal ≤ 1.6)")
    return 0
