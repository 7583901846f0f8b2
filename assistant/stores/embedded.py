"""The embedded store: one build directory read in place.

Entries stay on disk (entries.jsonl read at recorded offsets, ids looked up in a sorted array); the row
attributes (vendor, doc, group) are small integer arrays. The exact vectors stay on disk too (vectors.npy,
rows read on demand): below `APPROXIMATE_ABOVE` entries they are loaded into an exact FAISS index; above,
an inverted file (8-bit codes, or product-quantized codes above `COMPRESSED_ABOVE` vectors: the kind the
manifest names) proposes a multiple of the vectors wanted (product-quantized: at least a fixed number) and
those are re-scored exactly from the file and the best wanted kept (the PostgreSQL store ranks the same
cells exactly).
bm25s is loaded memory-mapped. Filters become a FAISS ID bitmap and a bm25s weight mask, cached per filter.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Container, Sequence
from functools import lru_cache
from pathlib import Path

import bm25s
import faiss
import numpy as np

from assistant.entry import FaqEntry
from assistant.stores.base import NO_FILTER, Candidates, DenseSample, Filter, WeightedTokens, allowed_rows
from assistant.stores.base import LazyEntries as BaseLazyEntries
from assistant.stores.preload import preload, preloaded
from assistant.stores.vector_file import RESIDENT_BYTES, VectorFile
from assistant.tokenize import Tokenizer

BM25_TOKENS_FILE = "bm25_tokens.jsonl"  # the token lists bm25s indexed, one entry a line
VECTORS_FILE = "vectors.npy"  # every vector, float32, row-major, in entry order
IVF_FILE = "vectors.ivf.faiss"  # above the size threshold: an inverted file (8-bit or PQ codes) over those vectors
DENSE_KINDS = ("flat", "ivf-sq8", "ivf-pq")  # the manifest's dense_index.kind: exact, or an inverted file
ENTRY_FILES = ("entries.jsonl", "entry_offsets.npy", "entry_ids.npy", "entry_id_rows.npy")
ROW_FILES = ("row_vendor.npy", "row_doc.npy", "row_group.npy", "group_order.npy", "group_start.npy",
             "vector_rows.npy", "vector_start.npy", "sample_rows.npy", "identifiers.json", "identifier_rows.npy",
             "identifier_weights.npy", "identifier_start.npy")


ENTRIES_CACHED = 4096  # parsed entries kept: a search reads its candidates' entries several times


class LazyEntries(BaseLazyEntries):
    """The build's entries read from disk on demand; iterated by streaming entries.jsonl."""

    def __iter__(self):
        with open(self._store.path / "entries.jsonl", encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield FaqEntry.from_json(json.loads(line))


class BuildView:
    """A build as the reranker, the evaluation and the web layer read it: path, manifest, lazy entries, vectors."""

    def __init__(self, store) -> None:
        self.store = store
        self.path = store.path
        self.manifest = store.manifest
        self.entries = LazyEntries(store)
        self.tokenizer = store.tokenizer
        self.vectors = store.vectors
        self.vector_rows = store.vector_rows
        self.offtopic = store.offtopic_vectors

    @property
    def build_id(self) -> str:
        return self.manifest["build_id"]


class EmbeddedStore:
    """A build directory as a Store (assistant/stores/base.py); also what `Reranker.load` reads."""

    def __init__(self, path: Path, manifest: dict, tokenizer: Tokenizer) -> None:
        self.path = path
        self.manifest = manifest
        self.tokenizer = tokenizer
        load = lambda name: np.load(path / name, mmap_mode="r", allow_pickle=False)  # noqa: E731
        self._offsets = load("entry_offsets.npy")
        self._ids, self._id_rows = load("entry_ids.npy"), load("entry_id_rows.npy")
        self._vendor, self._doc, self._group = load("row_vendor.npy"), load("row_doc.npy"), load("row_group.npy")
        self._group_order, self._group_start = load("group_order.npy"), load("group_start.npy")
        self.vector_rows = load("vector_rows.npy")
        self._vector_start = load("vector_start.npy")
        self._sample_rows = np.load(path / "sample_rows.npy", allow_pickle=False)
        self.offtopic_vectors = np.load(path / "offtopic.npy", allow_pickle=False)
        self.vectors = VectorFile(path / VECTORS_FILE, RESIDENT_BYTES)
        dense_index = manifest["dense_index"]  # its kind checked with the manifest (assistant/index.py)
        approximate = dense_index["kind"] != "flat"
        self._nprobe = int(dense_index["nprobe"]) if approximate else 0
        self._rescored = int(dense_index.get("rescored", 1))
        self._proposed_min = int(dense_index.get("proposed_min", 0))
        if approximate:
            # the codes stay in the file's pages (mapped read-only), not copied into the process's heap
            self._searched = faiss.read_index(str(path / IVF_FILE), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        else:
            self._searched = faiss.IndexFlatIP(self.vectors.d)
            self._searched.add(self.vectors.reconstruct_n(0, self.vectors.ntotal))
        self.bm25_model = bm25s.BM25.load(str(path / "bm25"), mmap=True, show_progress=False)
        keys = json.loads((path / "identifiers.json").read_text(encoding="utf-8"))
        self._identifiers = {key: i for i, key in enumerate(keys)}
        self._id_postings = load("identifier_rows.npy"), load("identifier_weights.npy"), load("identifier_start.npy")
        # the fixed sample the dense statistics are taken over: its vectors are read once
        starts, ends = self._vector_start[self._sample_rows], self._vector_start[self._sample_rows + 1]
        self._sample_owner = np.repeat(np.arange(len(self._sample_rows)), ends - starts)
        self._sample_vectors = self.vectors.reconstruct_batch(_ranges(starts, ends))
        self._file = open(path / "entries.jsonl", "rb")
        self.view = BuildView(self)
        self._masks = lru_cache(maxsize=32)(self._filter_masks)
        self._cached_entry = lru_cache(maxsize=ENTRIES_CACHED)(self._read_entry)
        self.preloading: threading.Thread | None = None

    # --- identity ------------------------------------------------------------------------------------------
    @property
    def build_id(self) -> str:
        return self.manifest["build_id"]

    @property
    def size(self) -> int:
        return len(self._offsets) - 1

    @property
    def vendors(self) -> list[str]:
        return list(self.manifest["vendors"])

    @property
    def docs(self) -> list[str]:
        return list(self.manifest["docs"])

    @property
    def vocabulary(self) -> Container[str]:
        return self.bm25_model.vocab_dict

    def rerank_source(self) -> "BuildView":
        return self.view

    # --- entries -------------------------------------------------------------------------------------------
    def entry(self, row: int) -> FaqEntry:
        """One entry, parsed on first use; the most recently read ones stay parsed (treat them as read-only)."""
        return self._cached_entry(int(row))

    def _read_entry(self, row: int) -> FaqEntry:
        start, end = int(self._offsets[row]), int(self._offsets[row + 1])
        raw = os.pread(self._file.fileno(), end - start, start)
        return FaqEntry.from_json(json.loads(raw))

    def entries(self, rows: Sequence[int]) -> list[FaqEntry]:
        return [self.entry(int(r)) for r in rows]

    def entry_by_id(self, entry_id: str) -> tuple[int, FaqEntry] | None:
        if not isinstance(entry_id, str) or not entry_id:
            return None
        at = int(np.searchsorted(self._ids, entry_id))
        if at >= len(self._ids) or self._ids[at] != entry_id:
            return None
        row = int(self._id_rows[at])
        return row, self.entry(row)

    def vendor_of(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self._vendor[np.asarray(rows, dtype=np.int64)])

    def doc_of(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self._doc[np.asarray(rows, dtype=np.int64)])

    def group_of(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self._group[np.asarray(rows, dtype=np.int64)])

    def group_members(self, group: int) -> np.ndarray:
        return np.asarray(self._group_order[self._group_start[group] : self._group_start[group + 1]], dtype=np.int64)

    # --- filters -------------------------------------------------------------------------------------------
    def allows(self, rows: np.ndarray, filter: Filter) -> np.ndarray:
        return allowed_rows(self, rows, filter)

    def _filter_masks(self, filter: Filter):
        """(entry weight mask for bm25s, FAISS selector over vectors, number of allowed entries) of one filter."""
        allowed = self.allows(np.arange(self.size), filter)
        bits = np.packbits(allowed[np.asarray(self.vector_rows)], bitorder="little")
        selector = faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))
        return allowed.astype(np.float32), (selector, bits), int(allowed.sum())

    # --- channels ------------------------------------------------------------------------------------------
    def dense(self, vector: np.ndarray, k: int, filter: Filter = NO_FILTER) -> Candidates:
        wanted = min(self.vectors.ntotal, 2 * k + 8)  # each entry has a few vectors: ask for more, keep each entry's best
        params = None
        if not filter.empty:
            _, (selector, _), count = self._masks(filter)
            if not count:
                return Candidates.none()
            params = self._search_params(selector, wanted)
        elif self._nprobe:
            params = self._search_params(None, wanted)
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        proposed = min(self.vectors.ntotal, max(wanted * self._rescored, self._proposed_min))
        _, positions = self._searched.search(query, proposed, params=params)
        positions = positions[0][positions[0] >= 0]
        scores = self._inner_products(vector, positions)  # exact, and the very sums `dense_scores` makes
        kept = np.lexsort((positions, -scores))[:wanted]  # the exact best of the proposals, ties by position
        positions, scores = positions[kept], scores[kept]
        rows = np.asarray(self.vector_rows)[positions].astype(np.int64)
        rows, owner = np.unique(rows, return_inverse=True)
        best = np.full(len(rows), -np.inf, dtype=np.float32)
        np.maximum.at(best, owner.reshape(-1), scores)  # each entry's best vector
        return _top(rows, np.maximum(best, 0.0), k, positive=False)

    def _search_params(self, selector, wanted: int):
        if self._nprobe:
            params = faiss.SearchParametersIVF()
            params.nprobe = self._nprobe
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        return params

    def bm25(self, query: WeightedTokens, k: int, filter: Filter = NO_FILTER) -> Candidates:
        scores = self._bm25_all(query, filter)
        if scores is None:
            return Candidates.none()
        return _top(np.arange(len(scores), dtype=np.int64), scores, k, positive=True)

    def _postings(self, tokens):
        """(entry rows, BM25 scores) of each known token's posting list, in the query's order."""
        vocab, matrix = self.bm25_model.vocab_dict, self.bm25_model.scores
        indptr, indices, data = matrix["indptr"], matrix["indices"], matrix["data"]
        for token in tokens:  # a repeated token counts again, as in bm25s
            if (at := vocab.get(token)) is not None:
                start, end = int(indptr[at]), int(indptr[at + 1])
                yield indices[start:end], data[start:end]

    def _bm25_all(self, query: WeightedTokens, filter: Filter) -> np.ndarray | None:
        """Scores of every entry, summed token by token in float32 exactly as bm25s's scorer does (a posting
        list names each entry once, so a fancy-index add is its np.add.at), and the parts weighted."""
        total = None
        for tokens, weight in query:
            part = None
            for rows, scores in self._postings(tokens):
                part = np.zeros(self.size, dtype=np.float32) if part is None else part
                part[rows] += scores
            if part is not None and weight:
                total = part * np.float32(weight) if total is None else total + np.float32(weight) * part
        if total is not None and not filter.empty:
            total *= self._masks(filter)[0]
        return total

    def exact(self, identifiers: Container[str], k: int, filter: Filter = NO_FILTER) -> Candidates:
        rows_of, weights_of, start = self._id_postings
        keys = [self._identifiers[i] for i in identifiers if i in self._identifiers]
        if not keys:
            return Candidates.none()
        rows = np.concatenate([rows_of[start[k] : start[k + 1]] for k in keys])
        weights = np.concatenate([weights_of[start[k] : start[k + 1]] for k in keys])
        rows, inverse = np.unique(rows, return_inverse=True)
        scores = np.bincount(inverse, weights=weights).astype(np.float32)
        keep = self.allows(rows, filter)
        return _top(rows[keep], scores[keep], k, positive=True)

    # --- fill-ins and statistics ---------------------------------------------------------------------------
    def dense_scores(self, vector: np.ndarray, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return np.zeros(0, dtype=np.float32)
        starts, ends = self._vector_start[rows], self._vector_start[rows + 1]
        positions = _ranges(starts, ends)
        owners = np.repeat(np.arange(len(rows)), ends - starts)
        best = np.full(len(rows), -np.inf, dtype=np.float32)
        np.maximum.at(best, owners, self._inner_products(vector, positions))
        return best

    def bm25_scores(self, query: WeightedTokens, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        total = np.zeros(len(rows), dtype=np.float32)
        for tokens, weight in query:
            part = np.zeros(len(rows), dtype=np.float32)
            for docs, scores in self._postings(tokens):  # each posting list is sorted by entry row
                at = np.minimum(np.searchsorted(docs, rows.astype(docs.dtype, copy=False)), len(docs) - 1)
                hit = docs[at] == rows if len(docs) else np.zeros(len(rows), dtype=bool)
                part[hit] += scores[at[hit]]
            if weight:
                total = total + np.float32(weight) * part
        return total

    def dense_sample(self, vector: np.ndarray, filter: Filter = NO_FILTER) -> DenseSample:
        best = np.zeros(len(self._sample_rows), dtype=np.float32)
        if len(self._sample_vectors):
            np.maximum.at(best, self._sample_owner, _inner_products(vector, self._sample_vectors))
        values = best[self.allows(self._sample_rows, filter)]
        if not len(values):
            return DenseSample(0.0, 0.0, 0.0)
        return DenseSample(float(values.min()), float(values.mean()), float(values.std()))

    def offtopic(self, vector: np.ndarray) -> float:
        if not len(self.offtopic_vectors):
            return 0.0
        return float((self.offtopic_vectors @ np.asarray(vector, dtype=np.float32)).max())

    def _inner_products(self, vector: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """The query's inner product with the vectors at `positions`, read from the vector file."""
        return _inner_products(vector, self.vectors.reconstruct_batch(positions))

    def warm(self) -> None:
        if self.preloading is None:
            self.preloading = preload(preloaded(self.path))

    def close(self) -> None:
        self._file.close()
        self.vectors.close()


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Every position of the ranges [start, end), one range after the other."""
    counts = np.asarray(ends, dtype=np.int64) - np.asarray(starts, dtype=np.int64)
    before = np.cumsum(counts) - counts  # output positions taken by the earlier ranges
    return np.repeat(np.asarray(starts, dtype=np.int64) - before, counts) + np.arange(int(counts.sum()))


def _inner_products(vector: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """FAISS's own kernel, one vector at a time: the same float sums as its exact search, whatever the batch,
    so a vector's score never depends on which others were scored with it."""
    query = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    out = np.empty(len(vectors), dtype=np.float32)
    if len(vectors):
        faiss.fvec_inner_products_ny(faiss.swig_ptr(out), faiss.swig_ptr(query), faiss.swig_ptr(vectors),
                                     len(query), len(vectors))
    return out


def _top(rows: np.ndarray, scores: np.ndarray, k: int, positive: bool) -> Candidates:
    """The k best (rows, scores), best first; equal scores by lowest row, at the cut too. `positive`: only
    scores above 0."""
    if positive:
        keep = scores > 0
        rows, scores = rows[keep], scores[keep]
    if len(scores) > k:
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]  # the k-th best score
        keep = scores >= kth  # every entry tied with it, so the lowest rows among them are kept
        rows, scores = rows[keep], scores[keep]
    order = np.lexsort((rows, -scores))[:k]
    return Candidates(rows[order].astype(np.int64), scores[order].astype(np.float32))


def open_embedded_store(path: Path | None, settings=None) -> EmbeddedStore:
    """The published build of an index directory (default: the settings' one, checked against the corpus),
    or one build directory as given."""
    import dataclasses

    from assistant.config import Settings
    from assistant.index import load_build, load_index

    settings = settings or Settings.from_env()
    if path is not None and (path / "manifest.json").is_file():
        return load_build(path, settings).store
    if path is not None:
        settings = dataclasses.replace(settings, index_dir=path)
    return load_index(settings).store
