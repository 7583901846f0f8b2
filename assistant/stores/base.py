"""The store protocol: what the search pipeline asks of a build, whatever holds it (files, PostgreSQL).

Every channel returns its top-k `Candidates` with the `Filter` applied inside the store (FAISS ID selector,
bm25s weight mask, SQL WHERE), so no query costs a Python loop over the corpus. Rows are the build's
entry rows (0 .. size-1); groups (editions of one question) and vendors/docs are small integers.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from assistant.entry import FaqEntry
from assistant.tokenize import Tokenizer

# One BM25 query: token lists, each with its weight (the focus, and the ask of a long message at a lower weight).
WeightedTokens = Sequence[tuple[Sequence[str], float]]


@dataclass(frozen=True)
class Filter:
    """Which entries a search may return: one vendor (slug) and/or one document (edition); None = any."""

    vendor: str | None = None
    doc: str | None = None

    @property
    def empty(self) -> bool:
        return self.vendor is None and self.doc is None


NO_FILTER = Filter()


@dataclass
class Candidates:
    """A channel's top-k entry rows, best first, with their scores."""

    rows: np.ndarray  # int64
    scores: np.ndarray  # float32

    @classmethod
    def none(cls) -> "Candidates":
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class DenseSample:
    """A channel statistic the fusion needs without scanning the corpus: the query's cosine (best vector
    of each entry) to a fixed sample of allowed entries — the whole corpus when it is smaller than the sample."""

    low: float
    mean: float
    std: float


@runtime_checkable
class Store(Protocol):
    """One published build, read-only."""

    @property
    def build_id(self) -> str: ...

    @property
    def manifest(self) -> dict:
        """embedder {id, spec, dim}, vendor_aliases {slug: [names]}, vendor_names {slug: name}, docs [doc ids,
        newest first per vendor], counts, fusion (weights), dense_index {kind, ...}, corpus fingerprint."""

    @property
    def size(self) -> int:
        """Number of entries."""

    @property
    def tokenizer(self) -> Tokenizer: ...

    @property
    def vocabulary(self) -> Container[str]:
        """BM25 vocabulary: tokens the corpus knows."""

    @property
    def vendors(self) -> list[str]:
        """Vendor slugs; `vendor_of` returns indices into this list."""

    @property
    def docs(self) -> list[str]:
        """Document (edition) ids; `doc_of` returns indices into this list."""

    # --- entries, lazily -------------------------------------------------------------------------------
    def entries(self, rows: Sequence[int]) -> list[FaqEntry]: ...

    def entry_by_id(self, entry_id: str) -> tuple[int, FaqEntry] | None: ...

    def vendor_of(self, rows: np.ndarray) -> np.ndarray: ...

    def doc_of(self, rows: np.ndarray) -> np.ndarray: ...

    def group_of(self, rows: np.ndarray) -> np.ndarray:
        """Integer group id of each row (editions of one question share it)."""

    def group_members(self, group: int) -> np.ndarray:
        """Rows of one group, newest edition first."""

    # --- channels: top-k with the filter applied inside the store ----------------------------------------
    def dense(self, vector: np.ndarray, k: int, filter: Filter = NO_FILTER) -> Candidates:
        """Best cosine of each entry's vectors to the (normalised) query vector."""

    def bm25(self, query: WeightedTokens, k: int, filter: Filter = NO_FILTER) -> Candidates:
        """Weighted sum of BM25 scores of each token list (tokens outside the vocabulary are ignored)."""

    def exact(self, identifiers: Container[str], k: int, filter: Filter = NO_FILTER) -> Candidates:
        """Entries carrying the identifiers: 2 per identifier in the question + 1 per identifier anywhere."""

    # --- scores of given rows (the fusion fills in the channels that did not return a candidate) ---------
    def dense_scores(self, vector: np.ndarray, rows: np.ndarray) -> np.ndarray: ...

    def bm25_scores(self, query: WeightedTokens, rows: np.ndarray) -> np.ndarray: ...

    def dense_sample(self, vector: np.ndarray, filter: Filter = NO_FILTER) -> DenseSample: ...

    def offtopic(self, vector: np.ndarray) -> float:
        """Best cosine to the build's off-topic questions (0 when it has none)."""

    def warm(self) -> None:
        """A server is about to take queries: have what every search reads brought into memory, in the
        background (the embedded store asks the kernel to cache its files; the database caches its own)."""

    def close(self) -> None: ...


def allowed_rows(store: Store, rows: np.ndarray, filter: Filter) -> np.ndarray:
    """Which of `rows` the filter allows (a bool per row), from the rows' small vendor/doc codes."""
    rows = np.asarray(rows, dtype=np.int64)
    keep = np.ones(len(rows), dtype=bool)
    if filter.vendor is not None:
        code = store.vendors.index(filter.vendor) if filter.vendor in store.vendors else -1
        keep &= store.vendor_of(rows) == code
    if filter.doc is not None:
        code = store.docs.index(filter.doc) if filter.doc in store.docs else -1
        keep &= store.doc_of(rows) == code
    return keep


def open_store(spec=None, settings=None) -> Store:
    """The published build named by `spec`: a `postgresql://…` URL (or FAQ_DATABASE_URL when `spec` is None)
    opens the PostgreSQL store; anything else (None, an index directory) the embedded store."""
    import os
    from pathlib import Path

    if spec is None:  # the settings' database (`--store`, FAQ_DATABASE_URL), else the index directory
        spec = settings.database_url if settings is not None else os.environ.get("FAQ_DATABASE_URL") or None
    if isinstance(spec, str) and spec.startswith(("postgresql://", "postgres://")):
        from assistant.stores.postgres import open_postgres_store

        return open_postgres_store(spec, settings)
    from assistant.stores.embedded import open_embedded_store

    return open_embedded_store(Path(spec) if spec else None, settings)


class RerankSource(Protocol):
    """What `Reranker.load(source, glossary)` reads (assistant/rerank.py): a store exposes one as
    `store.rerank_source()`. `path / "rerank"` holds the build's rerank files (a PostgreSQL store writes
    them from the database into a local cache folder); `entries` is a sequence (lazy is fine)."""

    path: object
    entries: Sequence[FaqEntry]
    tokenizer: Tokenizer
    vectors: object  # faiss-like: ntotal, d, reconstruct_n(start, n), reconstruct_batch(positions)
    vector_rows: np.ndarray  # entry row of each vector
    store: "Store"  # each row's vendor (vendor_of, vendors)


class LazyEntries(Sequence):
    """A store's entries as a sequence read on demand (what the reranker and `faq eval` iterate)."""

    def __init__(self, store: "Store") -> None:
        self._store = store

    def __len__(self) -> int:
        return self._store.size

    def __getitem__(self, row):
        if isinstance(row, slice):
            return self._store.entries(range(*row.indices(len(self))))
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(row)
        return self._store.entry(row)

    def __iter__(self):
        for start in range(0, len(self), 2048):
            yield from self._store.entries(range(start, min(start + 2048, len(self))))
