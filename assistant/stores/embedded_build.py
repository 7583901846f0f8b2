"""Writing an embedded store's files into a build directory (the reading side is assistant/stores/embedded.py).

The dense index is exact (IndexFlatIP over vectors.npy) up to APPROXIMATE_ABOVE entries and an inverted file
(IVF) above.
Measured on this kind of machine (one thread, two 384-d vectors an entry, 208 neighbours asked): exact search
takes a median 1.6 ms at 5k entries, 7 ms at 10k, 19 ms at 20k and 32 ms at 50k, while a query embedding costs
about 10–20 ms; above 10k entries exact search alone would eat the search's budget (≤ 2× the embedding).
IVF rather than HNSW: FAQ corpora hold many near-duplicate entries (the same question in several editions,
products and vendors); HNSW's graph loses among such near-ties (recall@10 0.55 at 100k replicated entries
with efSearch 128, 0.95 only at efSearch 1024 and 17 ms), while near-duplicates share an IVF cell and are
then compared exactly (recall@10 ≥ 0.998 at 60k with 8 of 979 cells probed, 0.13 ms).
The inverted file holds 8-bit scalar-quantized codes (a quarter of the float32 vectors' memory) up to
COMPRESSED_ABOVE vectors; it proposes twice the vectors a search wants, which the store re-scores exactly from
the vector file (vectors.npy), so the order it returns is the exact one among what the cells held.
Above COMPRESSED_ABOVE vectors the 8-bit codes alone would not fit the memory budget (1M entries ≈ 14M vectors:
5.4 GB of codes, and every page a query touches counts in its resident set), so the inverted file holds product-
quantized codes instead (PQ_BYTES bytes a vector, a sixth of the 8-bit codes), which rank coarser: it proposes
PQ_RESCORED times the vectors wanted and at least PQ_PROPOSED_MIN, re-scored exactly the same way.
Measured at 1M-entry density (12 real entries × 3,246 jittered copies, 550k vectors, a tenth of the cells
probed), recall@10 of the entries after re-scoring, by proposals (k = 10 asks for 28 vectors):
48 sub-quantizers 0.71 at 224 proposals, 0.84 at 448; 64 sub-quantizers 0.83 at 224, 0.94 at 448 (and on
8 entries' copies: 0.96 at 448, 0.991 at 1,024, 1.0 at 2,048). The copies differ by isotropic noise that the
codes cannot tell apart, so the exact re-scoring does the ranking: the floor of proposals is what recalls.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import bm25s
import faiss
import numpy as np

from assistant.entry import FaqEntry
from assistant.stores.embedded import BM25_TOKENS_FILE, IVF_FILE, VECTORS_FILE
from assistant.stores.vector_file import write_vector_file
from assistant.tokenize import corpus_identifiers, normalize

APPROXIMATE_ABOVE = 10_000  # entries
CELLS_PER_SQRT = 4  # IVF cells: 4 × √(entries)
TRAINING_PER_CELL = 64  # k-means sample: vectors per cell
TRAINING_MAX = 131_072  # k-means sample: at most this many vectors (1M entries: 4,000 cells × 33)
NPROBE_MIN, CELLS_PER_PROBE = 32, 40  # cells searched per query: max(32, cells / 40)
SAMPLE_SIZE = 4096  # entries the dense statistics (spread, z-score) are taken over
QUESTION_WEIGHT, TEXT_WEIGHT = 2.0, 1.0
RESCORED = 2  # the inverted file proposes this many times the vectors wanted; the vector file re-scores them
# Product quantization above this many vectors. Every code page the searches touch stays in the resident set;
# at 100k entries (1.4M vectors) the 8-bit codes' 552 MB of mapped pages alone put a server with the reranker
# at 1.19 GB (the budget is 1 GB), while product-quantized codes are 100 MB. Below 1M vectors the 8-bit codes
# (≤ 384 MB) keep their finer proposals.
COMPRESSED_ABOVE = 1_000_000  # vectors
PQ_BYTES = 64  # sub-quantizers of 8 bits each (384 dims: 6 a sub-quantizer)
PQ_RESCORED = 8
PQ_PROPOSED_MIN = 2048  # vectors: what a channel's top 100 proposes anyway (208 × 8 = 1,664), rounded up
# Above APPROXIMATE_ABOVE entries an entry is searched by its first KEYS_AT_SCALE search keys (vectors, BM25 text,
# the reranker's question field): with all of today's keys (about 22 a group) the 100k bench held 2.4M vectors, its
# recall@10 fell 0.990 → 0.955 and its peak RSS rose 845 → 1,232 MB (the budget is 1 GB).
KEYS_AT_SCALE = 12


def keys_kept(entries: int, approximate_above: int = APPROXIMATE_ABOVE) -> int | None:
    """How many of an entry's search keys a store of `entries` entries searches (None: all)."""
    return KEYS_AT_SCALE if entries > approximate_above else None


def write_store_files(folder: Path, entries: list[FaqEntry], vectors: np.ndarray, vector_rows: np.ndarray,
                      corpus_tokens: list[list[str]], aliases: dict[str, list[str]], approximate_above: int = APPROXIMATE_ABOVE,
                      compressed_above: int = COMPRESSED_ABOVE) -> dict:
    """Everything the embedded store reads, for `entries` (vectors in entry order, BM25 tokens per entry);
    returns the manifest's fields (vendors, docs, doc_rows, vendor_names, dense_index, vocabulary size)."""
    vocabulary = write_bm25(folder, corpus_tokens)
    dense_index = write_dense_index(folder, vectors, len(entries), approximate_above, compressed_above=compressed_above)
    write_entry_files(folder, entries)
    info = write_row_files(folder, entries, vector_rows, aliases)
    return {**info, "dense_index": dense_index, "vocabulary": vocabulary}


def write_bm25(folder: Path, corpus_tokens: list[list[str]]) -> int:
    """The bm25s index, and the token lists it was made from (a PostgreSQL publish computes BM25 from the same
    tokens); returns the vocabulary's size."""
    bm25 = bm25s.BM25()
    bm25.index(corpus_tokens, show_progress=False)
    bm25.save(str(folder / "bm25"))
    with (folder / BM25_TOKENS_FILE).open("w", encoding="utf-8") as out:
        for tokens in corpus_tokens:
            out.write(json.dumps(tokens, ensure_ascii=False) + "\n")
    return len(bm25.vocab_dict)


def write_dense_index(folder: Path, vectors: np.ndarray | Iterable[np.ndarray], entries: int,
                      approximate_above: int = APPROXIMATE_ABOVE, shape: tuple[int, int] | None = None,
                      compressed_above: int = COMPRESSED_ABOVE) -> dict:
    """The exact vectors (vectors.npy) and, above the size threshold, the inverted file over them (8-bit codes,
    or product-quantized above `compressed_above` vectors); `vectors` may come in blocks of a matrix of `shape`
    (a large synthetic corpus is never held twice). Returns what the manifest records."""
    blocks = [vectors] if isinstance(vectors, np.ndarray) else vectors
    count, dim = vectors.shape if isinstance(vectors, np.ndarray) else shape
    if entries <= approximate_above:
        write_vector_file(folder / VECTORS_FILE, blocks, count, dim)
        return {"kind": "flat", "approximate_above": approximate_above}
    cells = ivf_cells(entries)
    if count > compressed_above:
        codes = pq_subquantizers(dim)
        ivf = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, cells, codes, 8, faiss.METRIC_INNER_PRODUCT)
        kind = {"kind": "ivf-pq", "subquantizers": codes, "bits": 8, "rescored": PQ_RESCORED,
                "proposed_min": PQ_PROPOSED_MIN}
    else:
        ivf = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, cells, faiss.ScalarQuantizer.QT_8bit,
                                            faiss.METRIC_INNER_PRODUCT)
        kind = {"kind": "ivf-sq8", "rescored": RESCORED}
    training = min(cells * TRAINING_PER_CELL, TRAINING_MAX)
    pending: list[np.ndarray] = []  # the first blocks, until they hold the training sample

    def indexed(blocks: Iterable[np.ndarray]):
        held = 0
        for block in blocks:
            block = np.ascontiguousarray(block, dtype=np.float32)
            yield block
            if ivf.is_trained:
                ivf.add(block)
                continue
            pending.append(block)
            held += len(block)
            if held >= training:
                _train_and_add(ivf, pending, training)

    write_vector_file(folder / VECTORS_FILE, indexed(blocks), count, dim)
    if not ivf.is_trained:
        _train_and_add(ivf, pending, training)
    faiss.write_index(ivf, str(folder / IVF_FILE))
    return {**kind, "approximate_above": approximate_above, "compressed_above": compressed_above, "cells": cells,
            "nprobe": ivf_nprobe(cells), "training": min(training, count)}


def pq_subquantizers(dim: int) -> int:
    """Sub-quantizers of the product quantizer: PQ_BYTES when they divide `dim` (384 dims: 64 of 6), else the
    most that divide it without exceeding PQ_BYTES."""
    return max(m for m in range(1, min(PQ_BYTES, dim) + 1) if dim % m == 0)


def ivf_cells(entries: int) -> int:
    """Cells of the inverted file over `entries` entries (k-means wants ≥ 39 points a cell)."""
    return max(1, min(int(CELLS_PER_SQRT * np.sqrt(entries)), entries // 39))


def ivf_nprobe(cells: int) -> int:
    """Cells searched per query: 32, or a fortieth of the cells when there are more than 1,280."""
    return min(cells, max(NPROBE_MIN, cells // CELLS_PER_PROBE))


def _train_and_add(index, blocks: list[np.ndarray], sample_size: int, seed: int = 0) -> None:
    """Train the IVF's cells and quantizer on a random sample of the blocks held so far, then add them."""
    held = np.concatenate(blocks)
    rng = np.random.default_rng(seed)
    sample = held if len(held) <= sample_size else held[np.sort(rng.choice(len(held), sample_size, replace=False))]
    index.train(sample)
    index.add(held)
    blocks.clear()


def write_entry_files(folder: Path, entries: list[FaqEntry]) -> None:
    lines = (json.dumps(entry.to_json(), ensure_ascii=False).encode() + b"\n" for entry in entries)
    write_entry_lines(folder, lines, [e.id for e in entries])


def write_entry_lines(folder: Path, lines: Iterable[bytes], ids: list[str]) -> None:
    """entries.jsonl (one JSON entry a line) with its line offsets, and the sorted id → row lookup."""
    offsets = [0]
    with (folder / "entries.jsonl").open("wb") as out:
        for line in lines:
            out.write(line)
            offsets.append(offsets[-1] + len(line))
    np.save(folder / "entry_offsets.npy", np.array(offsets, dtype=np.int64), allow_pickle=False)
    ids = np.array(ids)
    order = np.argsort(ids, kind="stable")
    np.save(folder / "entry_ids.npy", ids[order], allow_pickle=False)
    np.save(folder / "entry_id_rows.npy", order.astype(np.int64), allow_pickle=False)


def write_row_files(folder: Path, entries: list[FaqEntry], vector_rows: np.ndarray, aliases: dict[str, list[str]]) -> dict:
    """The row arrays and identifier postings of `entries`; returns what the manifest records (vendors, docs,
    the first row of each doc, the names that name each vendor in a query)."""
    vendors = sorted({e.vendor for e in entries})
    docs = list(dict.fromkeys(e.doc for e in entries))
    group_ids: dict[str, int] = {}
    groups = np.array([group_ids.setdefault(e.group or e.id, len(group_ids)) for e in entries], dtype=np.int32)
    vendor_code = {v: i for i, v in enumerate(vendors)}
    doc_code = {d: i for i, d in enumerate(docs)}
    write_row_arrays(folder, np.array([vendor_code[e.vendor] for e in entries]), np.array([doc_code[e.doc] for e in entries]),
                     groups, vector_rows)
    write_identifiers(folder, identifier_postings(entries))
    doc_rows = [next(row for row, e in enumerate(entries) if e.doc == doc) for doc in docs]
    return {"vendors": vendors, "docs": docs, "doc_rows": doc_rows, "vendor_names": vendor_names(entries, aliases)}


def write_row_arrays(folder: Path, vendor: np.ndarray, doc: np.ndarray, groups: np.ndarray, vector_rows: np.ndarray,
                     seed: int = 0) -> None:
    """Vendor/doc/group code of each row, group members (row order: newest edition first), each row's vector
    range, and the fixed sample of rows the dense statistics are taken over."""
    n = len(groups)
    np.save(folder / "row_vendor.npy", vendor.astype(np.int16))
    np.save(folder / "row_doc.npy", doc.astype(np.int16))
    np.save(folder / "row_group.npy", groups.astype(np.int32))
    order = np.argsort(groups, kind="stable").astype(np.int32)
    np.save(folder / "group_order.npy", order)
    np.save(folder / "group_start.npy", np.searchsorted(groups[order], np.arange(int(groups.max(initial=-1)) + 2)).astype(np.int64))
    vector_rows = np.asarray(vector_rows)
    if np.any(np.diff(vector_rows) < 0):
        raise ValueError("vectors must be stored in entry order")
    np.save(folder / "vector_rows.npy", vector_rows.astype(np.int32), allow_pickle=False)
    counts = np.bincount(vector_rows, minlength=n)
    np.save(folder / "vector_start.npy", np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
    rng = np.random.default_rng(seed)
    sample = np.arange(n) if n <= SAMPLE_SIZE else np.sort(rng.choice(n, SAMPLE_SIZE, replace=False))
    np.save(folder / "sample_rows.npy", sample.astype(np.int64))


def vendor_names(entries: list[FaqEntry], aliases: dict[str, list[str]]) -> dict[str, list[str]]:
    """Vendor slug → the folded names that name it in a query: its display name's first word, the
    manifest's aliases and the slug itself."""
    names: dict[str, set[str]] = {}
    for e in entries:
        names.setdefault(e.vendor, {e.vendor}).add(normalize(e.vendor_name).split()[0])
    for slug, found in names.items():
        found.update(normalize(a) for a in aliases.get(slug, ()))
    return {slug: sorted(found) for slug, found in sorted(names.items())}


Postings = dict[str, tuple[np.ndarray, np.ndarray]]  # identifier → (rows, weights)


def identifier_postings(entries: list[FaqEntry]) -> Postings:
    """Identifier → rows carrying it, weight 2 + 1 when it is in the question, 1 when only in the answer."""
    postings: dict[str, tuple[list[int], list[float]]] = {}
    for row, entry in enumerate(entries):
        in_question = corpus_identifiers([entry.question])
        for identifier in in_question | corpus_identifiers([entry.answer]):
            rows, weights = postings.setdefault(identifier, ([], []))
            rows.append(row)
            weights.append(QUESTION_WEIGHT + TEXT_WEIGHT if identifier in in_question else TEXT_WEIGHT)
    return {key: (np.array(rows, dtype=np.int64), np.array(weights, dtype=np.float32))
            for key, (rows, weights) in postings.items()}


def write_identifiers(folder: Path, postings: Postings) -> None:
    """identifiers.json (the keys, in order) and their postings as flat arrays with start offsets."""
    keys = sorted(postings)
    rows = [postings[k][0] for k in keys]
    (folder / "identifiers.json").write_text(json.dumps(keys, ensure_ascii=False), encoding="utf-8")
    np.save(folder / "identifier_rows.npy", np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64))
    np.save(folder / "identifier_weights.npy",
            np.concatenate([postings[k][1] for k in keys]).astype(np.float32) if rows else np.zeros(0, np.float32))
    np.save(folder / "identifier_start.npy", np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64))
