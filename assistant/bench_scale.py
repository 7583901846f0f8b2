"""`faq bench --scale N`: the embedded store at N entries, from one run.

The synthetic corpus replicates the published build's real entries to N: every copy is its own entry in its
own edition group (ids and groups suffixed), keeps its vendor and document (so filters select as many), has
its vectors jittered (Gaussian noise, renormalised: a copy's cosine to its original ≈ 0.95) and is indexed
again by BM25 (document frequencies grow with the copies). The store is built into a temporary directory the
way `faq build` writes one (exact or an inverted file by size), its rerank folder too (`replicate_rerank`: each
copy's evidence that of its real entry, its answer-sentence vectors jittered, the real build's
trained model copied). A child process then opens the store and its reranker and searches as a server does, rerank
stage included, so startup time, peak RSS and the search figures are those of a fresh server; it times the bare query
embedding and the warm search in the same loop. Recall@10 compares the store's dense top-10 entries with exact search over the same vectors.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from assistant.aliases import Aliases
from assistant.compiled_forest import OBJECTS
from assistant.config import Settings
from assistant.errors import AssistantError
from assistant.index import bm25_text, file_hashes, load_index
from assistant.labels import load_queries
from assistant.rerank import FOLDER, KEYS_FROM
from assistant.stores.embedded_build import (
    APPROXIMATE_ABOVE, identifier_postings, keys_kept, write_bm25, write_dense_index, write_entry_lines, write_identifiers, write_row_arrays,
)

class ScaleError(AssistantError, ValueError):
    """The requested scale cannot be built."""


JITTER = 0.0165  # per dimension (384 dims: noise norm ≈ 0.32)
QUERIES = 200
ROUNDS = 2


def replicate(settings: Settings, n: int, folder: Path, seed: int = 0, log=print, approximate_above: int = APPROXIMATE_ABOVE) -> dict:
    """Write a store of `n` entries replicated from the published build into `folder`; returns its manifest."""
    real = load_index(settings)
    store = real.store
    entries = list(real.entries)
    r = len(entries)
    if n < r:
        raise ScaleError(f"--scale {n}: the synthetic corpus replicates the {r} real entries, so N must be at least {r}")
    copies = -(-n // r)
    source = np.arange(n) % r  # the real row each synthetic row copies
    copy = np.arange(n) // r
    rng = np.random.default_rng(seed)

    started = time.perf_counter()
    real_vectors = store.vectors.reconstruct_n(0, store.vectors.ntotal)
    kept = keys_kept(n, approximate_above)
    per_row = np.bincount(np.asarray(store.vector_rows), minlength=r)
    vector_rows, positions = _item_positions(per_row, source, None if kept is None else KEYS_FROM + kept)
    blocks = _jittered(real_vectors, positions, copy[vector_rows] > 0, rng)
    dense_index = write_dense_index(folder, blocks, n, approximate_above, shape=(len(positions), real_vectors.shape[1]))
    log(f"vectors: {len(positions)} ({dense_index['kind']}) in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    aliases = Aliases.load(settings.aliases_path).first(kept)
    tokens = [store.tokenizer.tokens(bm25_text(e, aliases.of(e))) or ["<empty>"] for e in entries]
    write_bm25(folder, [tokens[s] for s in source])  # the same lists, shared: little memory
    log(f"bm25: re-indexed {n} entries in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    raw = [json.loads(line) for line in (real.path / "entries.jsonl").read_text(encoding="utf-8").splitlines() if line]

    def lines():
        for row in range(n):
            data = dict(raw[source[row]])
            if copy[row]:
                suffix = f"~{copy[row]}"
                data["id"] = data["id"] + suffix
                data["group"] = (data.get("group") or raw[source[row]]["id"]) + suffix
                data["editions"] = []
            yield json.dumps(data, ensure_ascii=False).encode() + b"\n"

    ids = [raw[s]["id"] + (f"~{c}" if c else "") for s, c in zip(source, copy)]
    write_entry_lines(folder, lines(), ids)
    real_groups = store.group_of(np.arange(r)).astype(np.int64)
    groups = real_groups[source] + copy * (int(real_groups.max()) + 1)
    write_row_arrays(folder, store.vendor_of(source), store.doc_of(source), groups, vector_rows)
    real_postings = identifier_postings(entries)
    postings = {}
    for key, (rows, weights) in real_postings.items():
        all_rows = (rows[None, :] + (np.arange(copies) * r)[:, None]).ravel()
        keep = all_rows < n
        postings[key] = (all_rows[keep], np.tile(weights, copies)[keep])
    write_identifiers(folder, postings)
    for name in ("terms.txt", "offtopic.npy"):
        shutil.copyfile(real.path / name, folder / name)
    log(f"entries and rows written in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    replicate_rerank(real, folder / FOLDER, source, copy, aliases, rng)
    log(f"rerank folder written in {time.perf_counter() - started:.1f} s")

    manifest = dict(real.manifest)
    manifest["build_id"] = f"scale-{n}"
    manifest["dense_index"] = dense_index
    manifest["counts"] = {**manifest["counts"], "entries": n, "groups": int(groups.max()) + 1, "vectors": len(positions)}
    manifest["files"] = file_hashes(folder)
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return manifest


def _item_positions(per_row: np.ndarray, source: np.ndarray, first: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For items stored row by row (`per_row[r]` items of real row r; only each row's `first` ones when given),
    the synthetic row of each replicated item and the position of the real item it copies."""
    starts = np.concatenate([[0], np.cumsum(per_row)])
    counts = (per_row if first is None else np.minimum(per_row, first))[source]
    item_rows = np.repeat(np.arange(len(source)), counts)
    within = np.arange(len(item_rows)) - np.repeat(np.concatenate([[0], np.cumsum(counts)])[:-1], counts)
    return item_rows, starts[source][item_rows] + within


def _jittered(real_vectors: np.ndarray, positions: np.ndarray, jittered: np.ndarray, rng, size: int = 100_000):
    """The vectors at `positions`, block by block (the noise of 2M vectors at once would double the memory),
    those marked `jittered` with Gaussian noise, renormalised."""
    for at in range(0, len(positions), size):
        block = real_vectors[positions[at : at + size]]
        marked = jittered[at : at + size]
        noisy = block[marked] + rng.normal(0.0, JITTER, (int(marked.sum()), block.shape[1])).astype(np.float32)
        block[marked] = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
        yield block


def replicate_rerank(real, folder: Path, source: np.ndarray, copy: np.ndarray, aliases: Aliases, rng) -> None:
    """The synthetic build's rerank folder as a build writes it: each row's evidence and field tokens those of
    the real row it copies (field BM25 models and document frequencies over all N rows), its answer-sentence
    vectors jittered as its store vectors are (its search keys' are the store's); the real build's trained model
    and memory copied."""
    from assistant.rerank_build import (
        DECISIVE_FILE, write_document_frequencies, write_fields, write_items, write_manifest, write_row_lines,
    )

    real_folder = real.path / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    entries, tokens = list(real.entries), real.tokenizer.tokens
    questions = [tokens(e.question) + tokens(" ".join(aliases.of(e))) for e in entries]
    answers = [tokens(e.answer) for e in entries]
    write_fields(folder, [questions[s] for s in source], [answers[s] for s in source])
    lines = (real_folder / "rows.jsonl").read_bytes().splitlines(keepends=True)
    write_row_lines(folder, (lines[s] for s in source))
    write_document_frequencies(folder, [set(q) | set(a) for q, a in zip(questions, answers)],
                               np.bincount(source, minlength=len(entries)))
    real_vectors = np.load(real_folder / "sentence_vectors.npy", allow_pickle=False)
    item_rows, positions = _item_positions(np.diff(np.load(real_folder / "sentence_start.npy")), source)
    write_items(folder, "sentence", _jittered(real_vectors, positions, copy[item_rows] > 0, rng),
                np.bincount(item_rows, minlength=len(source)), real_vectors.shape[1])
    compiled = [name for name in OBJECTS.values() if (real_folder / name).exists()]
    for name in (DECISIVE_FILE, "model.json", "model.txt", "verdict.txt", "memory.json", "memory_vectors.npy", *compiled):
        shutil.copyfile(real_folder / name, folder / name)
    write_manifest(folder, has_model=True)


def recall_at_10(folder: Path, settings: Settings, query_vectors: np.ndarray, block: int = 200_000) -> float:
    """Share of the exact top-10 entries (brute force over every vector, block by block) that the store's
    dense channel returns."""
    from assistant.index import load_build

    store = load_build(folder, settings).store
    rows = np.asarray(store.vector_rows)
    best = np.full((len(query_vectors), store.size), -2.0, dtype=np.float32)
    for at in range(0, store.vectors.ntotal, block):
        vectors = store.vectors.reconstruct_n(at, min(block, store.vectors.ntotal - at))
        similarities = query_vectors @ vectors.T
        for q in range(len(query_vectors)):
            np.maximum.at(best[q], rows[at : at + len(vectors)], similarities[q])
    found = []
    for q, vector in enumerate(query_vectors):
        exact = set(np.argsort(-best[q], kind="stable")[:10].tolist())
        found.append(len(exact & set(store.dense(vector, 10).rows.tolist())) / 10)
    return float(np.mean(found))


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM: unlike ru_maxrss, not inherited from the parent across exec)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_parts_mb() -> dict:
    """The resident set now, by kind: anonymous (heap) and file-backed (memory-mapped store files and the
    embedding model's weights, pages the kernel can drop and read again)."""
    parts = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(("RssAnon:", "RssFile:")):
                parts[line.split(":")[0][3:].lower()] = round(int(line.split()[1]) / 1024, 1)
    return parts


CHILD = r"""
import json, sys, time
import numpy as np
started = time.perf_counter()
from assistant.config import Settings
from assistant.errors import AssistantError
from assistant.embed import load_embedder
from assistant.index import load_build
from assistant.glossary import Glossary
from assistant.rerank import Reranker
from assistant.search import Searcher
from assistant.bench_scale import peak_rss_mb, rss_parts_mb
folder, queries = sys.argv[1], json.loads(sys.stdin.read())
settings = Settings.from_env()
embedder = load_embedder()
model_s = time.perf_counter() - started
started = time.perf_counter()
index = load_build(__import__("pathlib").Path(folder), settings)
glossary = Glossary.from_settings(settings)
searcher = Searcher(index, embedder, glossary, reranker=Reranker.load(index, glossary))
startup_s = time.perf_counter() - started
searcher.store.warm()  # as `faq serve` does once its searcher is open
searcher.search(queries[0])
embed_ms, search_ms = [], []
for _ in range(int(sys.argv[2])):
    for q in queries:
        t = time.perf_counter(); embedder.embed_queries([q]); embed_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter(); searcher.search(q); search_ms.append((time.perf_counter() - t) * 1000)
print(json.dumps({"startup_s": startup_s, "model_s": model_s, "embed_ms": embed_ms, "search_ms": search_ms,
                  "peak_rss_mb": peak_rss_mb(), "rss_parts_mb": rss_parts_mb()}))
"""


def run_scale_bench(settings: Settings, n: int, as_json: bool = False, queries: int = QUERIES,
                    rounds: int = ROUNDS, keep: Path | None = None, approximate_above: int = APPROXIMATE_ABOVE) -> dict:
    log = (lambda message: print(message, file=sys.stderr)) if as_json else print
    real = load_index(settings)
    texts = [q.query for q in load_queries(settings.eval_queries_path, real.entries)]
    texts = texts[:: max(1, len(texts) // queries)][:queries]
    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="faq-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        manifest = replicate(settings, n, folder, log=log, approximate_above=approximate_above)
        build_s = time.perf_counter() - started
        os.sync()  # the build's files on disk first: searches that compete with their writeback (22 GB at 1M) measure the disk
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        child = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(rounds)], input=json.dumps(texts),
                               capture_output=True, text=True, env=env, check=False)
        if child.returncode != 0:
            raise RuntimeError(f"the search process failed: {child.stderr.strip().splitlines()[-1:]}")
        measured = json.loads(child.stdout.strip().splitlines()[-1])
        from assistant.embed import load_embedder

        query_vectors = np.asarray(load_embedder().embed_queries(texts[:100]), dtype=np.float32)
        recall = recall_at_10(folder, settings, query_vectors)
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    search, embed = np.array(measured["search_ms"]), np.array(measured["embed_ms"])
    figures = {
        "n": n, "store": "embedded", "dense_index": manifest["dense_index"]["kind"],
        "search_p50_ms": round(float(np.percentile(search, 50)), 2),
        "search_p95_ms": round(float(np.percentile(search, 95)), 2),
        "embed_p95_ms": round(float(np.percentile(embed, 95)), 2),
        "startup_s": round(measured["startup_s"], 2),
        "peak_rss_mb": round(measured["peak_rss_mb"], 1),
        "rss_anon_mb": measured["rss_parts_mb"].get("anon"),
        "rss_file_mb": measured["rss_parts_mb"].get("file"),
        "recall_at_10": round(recall, 4),
        "build_s": round(build_s, 1),
        "bench_rss_mb": round(peak_rss_mb(), 1),
    }
    if as_json:
        print(json.dumps(figures))
    else:
        ratio = figures["search_p95_ms"] / max(figures["embed_p95_ms"], 1e-9)
        print(f"{n} entries ({figures['dense_index']}), {len(search)} warm searches over {len(texts)} queries")
        print(f"  search p50 {figures['search_p50_ms']} ms, p95 {figures['search_p95_ms']} ms; "
              f"query embedding p95 {figures['embed_p95_ms']} ms (ratio {ratio:.2f})")
        print(f"  startup {figures['startup_s']} s (store + searcher; the embedding model apart), "
              f"peak RSS {figures['peak_rss_mb']} MB (search process, model included; at the end "
              f"{figures['rss_anon_mb']} MB anonymous, {figures['rss_file_mb']} MB file-backed)")
        print(f"  dense recall@10 vs exact {figures['recall_at_10']}; synthetic build {figures['build_s']} s")
    return figures
