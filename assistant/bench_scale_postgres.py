"""`faq bench --scale N --store postgresql://…`: the PostgreSQL store at N entries, beside the embedded store.

The synthetic corpus is assistant.bench_scale's (real entries replicated, jittered vectors, distinct groups). It
is published into a scratch database created on the given server (and dropped afterwards), so the database's
own published build is never replaced. Two child processes then search the same labelled queries, one per store,
each timing the bare query embedding and the warm search in the same loop; their top-5 lists are compared.
Recall@10 compares the store's dense top-10 with exact search over the same vectors.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

from assistant.bench_scale import QUERIES, ROUNDS, replicate
from assistant.config import Settings
from assistant.index import load_index
from assistant.labels import load_queries
from assistant.postgres.connection import DatabaseError, check_reachable, describe, url_with
from assistant.postgres.publish import publish_build

CHILD = r"""
import json, sys, time
from pathlib import Path
started = time.perf_counter()
from assistant.config import Settings
from assistant.embed import load_embedder
from assistant.index import load_build
from assistant.search import Searcher
from assistant.bench_scale import peak_rss_mb
spec, rounds, queries = sys.argv[1], int(sys.argv[2]), json.loads(sys.stdin.read())
settings = Settings.from_env()
embedder = load_embedder()
started = time.perf_counter()
if spec.startswith("postgresql://"):
    from assistant.stores.postgres import open_postgres_store
    view = open_postgres_store(spec, settings).view
else:
    view = load_build(Path(spec), settings)
searcher = Searcher(view, embedder)
startup_s = time.perf_counter() - started
searcher.store.warm()  # as `faq serve` does once its searcher is open
top5 = [[h.entry.id for h in searcher.search(q).hits] for q in queries]
embed_ms, search_ms = [], []
for _ in range(rounds):
    for q in queries:
        t = time.perf_counter(); embedder.embed_queries([q]); embed_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter(); searcher.search(q); search_ms.append((time.perf_counter() - t) * 1000)
print(json.dumps({"startup_s": startup_s, "embed_ms": embed_ms, "search_ms": search_ms, "top5": top5,
                  "peak_rss_mb": peak_rss_mb()}))
"""


def _child(spec: str, texts: list[str], rounds: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env.pop("FAQ_DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-c", CHILD, spec, str(rounds)], input=json.dumps(texts),
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the search process failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _scratch_database(url: str) -> tuple[str, str]:
    """A new database on the server of `url` (name, its URL)."""
    name = f"faq_bench_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise DatabaseError(f"the benchmark creates a scratch database on {describe(url)} and could not "
                            f"({str(exc).strip().splitlines()[0]}): use a user with CREATEDB") from None
    return name, url_with(url, dbname=name)


def _drop_database(url: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _recall_at_10(folder: Path, settings: Settings, scratch_url: str, query_vectors: np.ndarray) -> float:
    from assistant.index import load_build
    from assistant.stores.postgres import open_postgres_store

    exact_store = load_build(folder, settings).store
    vectors = exact_store.vectors.reconstruct_n(0, exact_store.vectors.ntotal)
    rows = np.asarray(exact_store.vector_rows)
    store = open_postgres_store(scratch_url, settings)
    found = []
    try:
        for q in query_vectors:
            best = np.full(exact_store.size, -2.0, dtype=np.float32)
            np.maximum.at(best, rows, vectors @ q)
            exact = set(np.argsort(-best, kind="stable")[:10].tolist())
            found.append(len(exact & set(store.dense(q, 10).rows.tolist())) / 10)
    finally:
        store.close()
    return float(np.mean(found))


def run_postgres_scale_bench(settings: Settings, n: int, url: str, as_json: bool = False, queries: int = QUERIES,
                             rounds: int = ROUNDS) -> dict:
    log = (lambda message: print(message, file=sys.stderr)) if as_json else print
    check_reachable(url)
    local = dataclasses.replace(settings, database_url=None)  # the synthetic corpus comes from the local build
    real = load_index(local)
    texts = [q.query for q in load_queries(settings.eval_queries_path, real.entries)]
    texts = texts[:: max(1, len(texts) // queries)][:queries]
    folder = Path(tempfile.mkdtemp(prefix="faq-scale-pg-"))
    name, scratch = _scratch_database(url)
    try:
        replicate(local, n, folder, log=log)
        started = time.perf_counter()
        publish_build(scratch, folder, local, log=log)
        publish_s = time.perf_counter() - started
        os.sync()  # as in bench_scale: the files and the database's writes on disk before anything is timed
        postgres = _child(scratch, texts, rounds)
        embedded = _child(str(folder), texts, 1)
        from assistant.embed import load_embedder

        query_vectors = np.asarray(load_embedder().embed_queries(texts[:100]), dtype=np.float32)
        recall = _recall_at_10(folder, local, scratch, query_vectors)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        _drop_database(url, name)
    search, embed = np.array(postgres["search_ms"]), np.array(postgres["embed_ms"])
    same = sum(a == b for a, b in zip(postgres["top5"], embedded["top5"])) / len(texts)
    figures = {
        "n": n, "store": "postgresql",
        "search_p50_ms": round(float(np.percentile(search, 50)), 2),
        "search_p95_ms": round(float(np.percentile(search, 95)), 2),
        "embed_p95_ms": round(float(np.percentile(embed, 95)), 2),
        "startup_s": round(postgres["startup_s"], 2),
        "peak_rss_mb": round(postgres["peak_rss_mb"], 1),
        "recall_at_10": round(recall, 4),
        "top5_same_as_embedded": round(same, 4),
        "publish_s": round(publish_s, 1),
        "bench_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if as_json:
        print(json.dumps(figures))
    else:
        ratio = figures["search_p95_ms"] / max(figures["embed_p95_ms"], 1e-9)
        print(f"{n} entries in PostgreSQL ({describe(url)}, scratch database), {len(search)} warm searches "
              f"over {len(texts)} queries")
        print(f"  search p50 {figures['search_p50_ms']} ms, p95 {figures['search_p95_ms']} ms; "
              f"query embedding p95 {figures['embed_p95_ms']} ms (ratio {ratio:.2f}, goal ≤ 4)")
        print(f"  startup {figures['startup_s']} s, peak RSS {figures['peak_rss_mb']} MB (search process)")
        print(f"  dense recall@10 vs exact {figures['recall_at_10']}; top-5 same as the embedded store on "
              f"{same:.1%} of the queries (goal ≥ 99%); publish {figures['publish_s']} s")
    return figures
