"""The PostgreSQL store: the published build of a database (assistant/postgres/schema.py), read through a pool.

Dense search probes the cells of the build's inverted file that the embedded store probes (each vector is stored
with its cell; the nearest centroids are found here, as FAISS finds them) and ranks their vectors exactly with
pgvector's inner product, so both stores propose the same vectors; BM25 sums the per-term impacts computed in the database, exact
identifiers use their index; filters are SQL WHERE clauses on each table's vendor/doc codes. Kept in
memory, as in the embedded store: the small per-row codes (vendor, doc, group), the vocabulary, the
off-topic questions and the fixed sample the dense statistics are taken over. The rerank files come from
the database into a local cache folder; no other file is read.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Container, Sequence
from functools import lru_cache
from pathlib import Path

import faiss
import numpy as np
import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from assistant.entry import FaqEntry
from assistant.postgres.connection import (
    DatabaseError, NoPublishedBuildError, check_reachable, describe, open_pool, require_pgvector,
)
from assistant.postgres.publish import CENTROIDS_BLOB, SAMPLE_VECTORS_BLOB, QueryVector
from assistant.postgres.schema import ident, published
from assistant.stores.embedded import _inner_products as inner_products  # FAISS's kernel: the same sums
from assistant.stores.embedded_build import ivf_nprobe
from assistant.stores.base import NO_FILTER, Candidates, DenseSample, Filter, LazyEntries, WeightedTokens, allowed_rows
from assistant.tokenize import Tokenizer

ENTRY_CACHE = 4096
SESSION_WORK_MEM = "64MB"  # BM25 sorts every posting of the query's terms by entry: in memory, not on disk
TERM_ORDER_SUM = "sum((p.impact * q.weight)::real ORDER BY q.ord)"  # see PostgresStore._bm25_terms


def open_postgres_store(url: str, settings=None) -> "PostgresStore":
    """The build the database publishes; typed errors say what is missing and what to run."""
    from assistant.config import Settings

    settings = settings or Settings.from_env()
    pool = open_pool(url, max_size=8, configure=_configure_session)
    try:
        with pool.connection() as conn:
            require_pgvector(conn, url)
            found = published(conn)
        if found is None:
            raise NoPublishedBuildError(
                f"{describe(url)} holds no published FAQ build: run `faq build --store <the same URL>`")
        return PostgresStore(url, pool, found[0], found[1], settings.cache_dir)
    except BaseException:
        pool.close()
        raise


def _configure_session(conn: psycopg.Connection) -> None:
    conn.execute(sql.SQL("SET work_mem = {}").format(sql.Literal(SESSION_WORK_MEM)))


def published_manifest(url: str) -> dict:
    """The manifest of the build the database publishes (no store opened)."""
    check_reachable(url)
    with psycopg.connect(url, autocommit=True) as conn:
        require_pgvector(conn, url)
        found = published(conn)
        if found is None:
            raise NoPublishedBuildError(
                f"{describe(url)} holds no published FAQ build: run `faq build --store <the same URL>`")
        return conn.execute(sql.SQL("SELECT value FROM {} WHERE key = 'manifest'").format(ident(found[1], "meta"))
                            ).fetchone()[0]


class StalePublishedBuildError(DatabaseError):
    """The published build was written by an older version (without the cells dense search probes, or with its
    files kept whole)."""


class PostgresStore:
    """One published build in PostgreSQL as a Store (assistant/stores/base.py)."""

    def __init__(self, url: str, pool: ConnectionPool, build_id: str, schema: str, cache_dir: Path) -> None:
        self.url = url
        self._pool = pool
        self.schema = schema
        self._t = {name: ident(schema, name) for name in
                   ("meta", "blobs", "entries", "vectors", "terms", "postings", "identifiers")}
        with pool.connection() as conn:
            meta = dict(conn.execute(sql.SQL("SELECT key, value FROM {}").format(self._t["meta"])).fetchall())
            codes = conn.execute(sql.SQL("SELECT vendor, doc, group_no FROM {} ORDER BY row")
                                 .format(self._t["entries"])).fetchall()
            self._term_no = dict(conn.execute(sql.SQL("SELECT term, term_no FROM {}").format(self._t["terms"])).fetchall())
            self.vector_rows = np.array(conn.execute(sql.SQL("SELECT row FROM {} ORDER BY position")
                                                     .format(self._t["vectors"])).fetchall(), dtype=np.int64).reshape(-1)
            (loaded,) = conn.execute("SELECT floor(extract(epoch FROM created) * 1e6)::bigint FROM faq.builds "
                                     "WHERE build_id = %s", (build_id,)).fetchone()
        self.manifest = meta["manifest"]
        self._bm25 = meta["bm25"]
        codes = np.array(codes, dtype=np.int64).reshape(-1, 3)
        self._vendor, self._doc = codes[:, 0].astype(np.int16), codes[:, 1].astype(np.int16)
        self._group = codes[:, 2].astype(np.int32)
        self._group_order = np.argsort(self._group, kind="stable")
        self._group_start = np.searchsorted(self._group[self._group_order], np.arange(self._group.max(initial=-1) + 2))
        # A build id published again (another database, or after a new version) is another folder.
        self._folder = cache_dir / "postgres" / f"{build_id}-{loaded}"
        self._write_blobs()
        terms = (self._folder / "terms.txt").read_text(encoding="utf-8").splitlines()
        self.tokenizer = Tokenizer(terms, cache_dir / "jieba")
        self.offtopic_vectors = np.load(self._folder / "offtopic.npy", allow_pickle=False)
        self._cells = self._cell_quantizer()
        self._sample_rows = np.load(self._folder / "sample_rows.npy", allow_pickle=False)
        self._sample_vectors, self._sample_owner = self._sample()
        self._entry = lru_cache(maxsize=ENTRY_CACHE)(self._fetch_entry)
        self.view = PostgresBuildView(self)
        self._lock = threading.Lock()

    # --- identity --------------------------------------------------------------------------------------------
    @property
    def build_id(self) -> str:
        return self.manifest["build_id"]

    @property
    def path(self) -> Path:
        """The local folder the rerank files were written to (the reranker reads `path / "rerank"`)."""
        return self._folder

    @property
    def size(self) -> int:
        return len(self._group)

    @property
    def vendors(self) -> list[str]:
        return list(self.manifest["vendors"])

    @property
    def docs(self) -> list[str]:
        return list(self.manifest["docs"])

    @property
    def vocabulary(self) -> Container[str]:
        return self._term_no

    def published_now(self) -> str | None:
        """The build id the database publishes now (None when it cannot be read): servers poll it."""
        try:
            with self._pool.connection(timeout=5) as conn:
                found = published(conn)
        except (psycopg.Error, PoolTimeout):
            return None
        return found[0] if found else None

    def usable(self) -> bool:
        """Whether this build's schema is still in the database (a build two publishes later drops it)."""
        try:
            with self._pool.connection(timeout=5) as conn:
                return conn.execute("SELECT to_regnamespace(%s) IS NOT NULL", (self.schema,)).fetchone()[0]
        except (psycopg.Error, PoolTimeout):
            return False

    def rerank_source(self) -> "PostgresBuildView":
        return self.view

    def _write_blobs(self) -> None:
        """The build's files (dictionary, off-topic and sample vectors, rerank files) into the cache folder, written
        once per publish, part by part (a temporary name, then a rename: concurrent workers never see half a file)."""
        with self._pool.connection() as conn:
            if not self._has_blob_parts(conn):
                raise StalePublishedBuildError(f"the build {self.build_id} published in {describe(self.url)} keeps its "
                                               "files whole (an older version wrote it): run `faq build --store <the same URL>`")
            parts = conn.execute(sql.SQL("SELECT name, count(*) FROM {} GROUP BY name").format(self._t["blobs"])).fetchall()
            with conn.cursor(binary=True) as cur:
                for name, count in parts:
                    if not (self._folder / name).is_file():
                        self._write_blob(cur, name, count)

    def _write_blob(self, cur: psycopg.Cursor, name: str, parts: int) -> None:
        target = self._folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{threading.get_ident()}")
        with temporary.open("wb") as handle:
            for part in range(parts):
                (data,) = cur.execute(sql.SQL("SELECT data FROM {} WHERE name = %s AND part = %s").format(self._t["blobs"]),
                                      (name, part)).fetchone()
                handle.write(data)
        temporary.replace(target)

    def _has_blob_parts(self, conn: psycopg.Connection) -> bool:
        return conn.execute("SELECT 1 FROM information_schema.columns WHERE table_schema = %s AND table_name = 'blobs' "
                            "AND column_name = 'part'", (self.schema,)).fetchone() is not None

    def _sample(self) -> tuple[np.ndarray, np.ndarray]:
        """The vectors of the fixed sample the dense statistics are taken over, and the sample row of each."""
        path = self._folder / SAMPLE_VECTORS_BLOB
        if not path.is_file():
            raise StalePublishedBuildError(f"the build {self.build_id} published in {describe(self.url)} lacks the "
                                           "sample vectors (an older version wrote it): run `faq build --store <the same URL>`")
        in_sample = np.isin(self.vector_rows, self._sample_rows)
        return np.load(path, allow_pickle=False), np.searchsorted(self._sample_rows, self.vector_rows[in_sample])

    def _cell_quantizer(self) -> tuple[faiss.IndexFlatIP, int] | None:
        """The inverted file's centroids in the index FAISS searches them with, and the cells probed per query
        (None for an exact build: every vector is searched)."""
        dense_index = self.manifest.get("dense_index", {})
        if dense_index.get("kind", "flat") == "flat":
            return None
        path = self._folder / CENTROIDS_BLOB
        if not path.is_file():
            raise StalePublishedBuildError(f"the build {self.build_id} published in {describe(self.url)} has no IVF "
                                           "cells (an older version wrote it): run `faq build --store <the same URL>`")
        centroids = np.load(path, allow_pickle=False)
        quantizer = faiss.IndexFlatIP(centroids.shape[1])
        quantizer.add(centroids)
        return quantizer, int(dense_index.get("nprobe") or ivf_nprobe(len(centroids)))

    # --- entries ---------------------------------------------------------------------------------------------
    def _fetch_entry(self, row: int) -> FaqEntry:
        return self.entries([row])[0]

    def entry(self, row: int) -> FaqEntry:
        return self._entry(int(row))

    def entries(self, rows: Sequence[int]) -> list[FaqEntry]:
        rows = [int(r) for r in rows]
        if not rows:
            return []
        with self._pool.connection() as conn:
            found = dict(conn.execute(sql.SQL("SELECT row, data FROM {} WHERE row = ANY(%s)").format(self._t["entries"]),
                                      (rows,)).fetchall())
        missing = [r for r in rows if r not in found]
        if missing:
            raise IndexError(f"rows {missing[:5]} are not in build {self.build_id}")
        return [FaqEntry.from_json(found[r]) for r in rows]

    def entry_by_id(self, entry_id: str) -> tuple[int, FaqEntry] | None:
        if not isinstance(entry_id, str) or not entry_id:
            return None
        with self._pool.connection() as conn:
            found = conn.execute(sql.SQL("SELECT row, data FROM {} WHERE id = %s").format(self._t["entries"]),
                                 (entry_id,)).fetchone()
        return (int(found[0]), FaqEntry.from_json(found[1])) if found else None

    def vendor_of(self, rows: np.ndarray) -> np.ndarray:
        return self._vendor[np.asarray(rows, dtype=np.int64)]

    def doc_of(self, rows: np.ndarray) -> np.ndarray:
        return self._doc[np.asarray(rows, dtype=np.int64)]

    def group_of(self, rows: np.ndarray) -> np.ndarray:
        return self._group[np.asarray(rows, dtype=np.int64)]

    def group_members(self, group: int) -> np.ndarray:
        return self._group_order[self._group_start[group]: self._group_start[group + 1]].astype(np.int64)

    def allows(self, rows: np.ndarray, filter: Filter) -> np.ndarray:
        return allowed_rows(self, rows, filter)

    # --- channels --------------------------------------------------------------------------------------------
    def _where(self, filter: Filter, alias: str = "") -> tuple[sql.Composable, list]:
        """The filter as SQL on a table's vendor/doc codes (an unknown vendor or doc allows nothing)."""
        clauses, params = [], []
        prefix = f"{alias}." if alias else ""
        for column, value, known in (("vendor", filter.vendor, self.vendors), ("doc", filter.doc, self.docs)):
            if value is not None:
                clauses.append(sql.SQL(prefix + column + " = %s"))
                params.append(known.index(value) if value in known else -1)
        if not clauses:
            return sql.SQL("TRUE"), []
        return sql.SQL(" AND ").join(clauses), params

    def dense(self, vector: np.ndarray, k: int, filter: Filter = NO_FILTER) -> Candidates:
        """As the embedded store: the `wanted` best vectors (ties by position) of the probed cells, or of all
        vectors in an exact build, then each entry's best."""
        wanted = min(len(self.vector_rows), 2 * k + 8)  # an entry has a few vectors: keep each entry's best
        where, params = self._where(filter)
        if self._cells is not None:
            quantizer, nprobe = self._cells
            _, probed = quantizer.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), nprobe)
            where = sql.SQL("cell = ANY(%s) AND {}").format(where)
            params = [probed[0][probed[0] >= 0].tolist(), *params]
        with self._pool.connection() as conn:
            found = conn.execute(
                sql.SQL("SELECT row, -(embedding <#> %s::vector) AS score FROM {} WHERE {} "
                        "ORDER BY score DESC, position LIMIT %s").format(self._t["vectors"], where),
                [QueryVector(vector), *params, wanted]).fetchall()
        if not found:
            return Candidates.none()
        rows = np.array([r for r, _ in found], dtype=np.int64)
        scores = np.array([s for _, s in found], dtype=np.float32)
        rows, first = np.unique(rows, return_index=True)  # best first: the first is each entry's best
        return _top(rows, np.maximum(scores[first], 0.0), k, positive=False)

    def _bm25_terms(self, query: WeightedTokens) -> tuple[list[int], list[float]]:
        """Each known term once, in the order the query first holds it, weighted by how often the weighted
        token lists hold it. Scores sum the terms' impacts in this order, in float4 as the embedded store
        sums them (a sum in whatever order the join delivers could differ in the last bit from run to run)."""
        weights: dict[int, float] = {}
        for tokens, weight in query:
            if not weight:
                continue
            for token in tokens:
                term = self._term_no.get(token)
                if term is not None:
                    weights[term] = weights.get(term, 0.0) + float(weight)
        return list(weights), list(weights.values())

    def bm25(self, query: WeightedTokens, k: int, filter: Filter = NO_FILTER) -> Candidates:
        """The exact top-k: every posting of the query's terms summed per entry in one pass. (A threshold
        algorithm over impact-ordered postings was slower: PostgreSQL scored its candidates by reading every
        posting of the terms anyway, once per round, and corpora of near-copies took three rounds at 100k.)"""
        terms, weights = self._bm25_terms(query)
        if not terms:
            return Candidates.none()
        where, params = self._where(filter, "p")
        with self._pool.connection() as conn:
            found = conn.execute(
                sql.SQL("SELECT p.row, " + TERM_ORDER_SUM + " AS score FROM unnest(%s::int[], %s::float8[]) "
                        "WITH ORDINALITY AS q(term_no, weight, ord) JOIN {p} p ON p.term_no = q.term_no "
                        "WHERE {where} GROUP BY p.row ORDER BY score DESC, p.row LIMIT %s")
                .format(p=self._t["postings"], where=where),
                [terms, weights, *params, k]).fetchall()
        return _candidates(found, positive=True)

    def bm25_scores(self, query: WeightedTokens, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        terms, weights = self._bm25_terms(query)
        scores = np.zeros(len(rows), dtype=np.float32)
        if not terms or not len(rows):
            return scores
        with self._pool.connection() as conn:  # one index probe per (row, term)
            found = conn.execute(
                sql.SQL("SELECT r.row, " + TERM_ORDER_SUM + " FROM unnest(%s::int[]) AS r(row) "
                        "CROSS JOIN unnest(%s::int[], %s::float8[]) WITH ORDINALITY AS q(term_no, weight, ord) "
                        "JOIN {} p ON p.row = r.row AND p.term_no = q.term_no GROUP BY r.row").format(self._t["postings"]),
                [rows.tolist(), terms, weights]).fetchall()
        position = {int(r): i for i, r in enumerate(rows.tolist())}
        for row, score in found:
            scores[position[row]] = score
        return scores

    def exact(self, identifiers: Container[str], k: int, filter: Filter = NO_FILTER) -> Candidates:
        wanted = sorted(identifiers)
        if not wanted:
            return Candidates.none()
        where, params = self._where(filter)
        with self._pool.connection() as conn:
            found = conn.execute(
                sql.SQL("SELECT row, sum(weight) AS score FROM {} WHERE identifier = ANY(%s) AND {} "
                        "GROUP BY row ORDER BY score DESC, row LIMIT %s").format(self._t["identifiers"], where),
                [wanted, *params, k]).fetchall()
        return _candidates(found, positive=True)

    # --- fill-ins and statistics -----------------------------------------------------------------------------
    def dense_scores(self, vector: np.ndarray, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        scores = np.zeros(len(rows), dtype=np.float32)
        if not len(rows):
            return scores
        with self._pool.connection() as conn:
            found = conn.execute(sql.SQL("SELECT row, max(-(embedding <#> %s::vector)) FROM {} WHERE row = ANY(%s) "
                                         "GROUP BY row").format(self._t["vectors"]),
                                 (QueryVector(vector), rows.tolist())).fetchall()
        position = {int(r): i for i, r in enumerate(rows.tolist())}
        for row, score in found:
            scores[position[row]] = score
        return scores

    def dense_sample(self, vector: np.ndarray, filter: Filter = NO_FILTER) -> DenseSample:
        best = np.zeros(len(self._sample_rows), dtype=np.float32)
        if len(self._sample_vectors):
            np.maximum.at(best, self._sample_owner, inner_products(vector, self._sample_vectors))
        values = best[self.allows(self._sample_rows, filter)]
        if not len(values):
            return DenseSample(0.0, 0.0, 0.0)
        return DenseSample(float(values.min()), float(values.mean()), float(values.std()))

    def offtopic(self, vector: np.ndarray) -> float:
        if not len(self.offtopic_vectors):
            return 0.0
        return float((self.offtopic_vectors @ np.asarray(vector, dtype=np.float32)).max())

    def warm(self) -> None:
        pass  # the server's shared_buffers and the OS cache keep what its queries read

    def close(self) -> None:
        self._pool.close()


def _candidates(found: list[tuple], positive: bool) -> Candidates:
    rows = np.array([r for r, _ in found], dtype=np.int64)
    scores = np.array([s for _, s in found], dtype=np.float32)
    return _top(rows, scores, len(rows), positive)


def _top(rows: np.ndarray, scores: np.ndarray, k: int, positive: bool) -> Candidates:
    """The k best (rows, scores), best first, ties by row (as the embedded store orders them)."""
    if positive:
        keep = scores > 0
        rows, scores = rows[keep], scores[keep]
    order = np.lexsort((rows, -scores))[:k]
    return Candidates(rows[order].astype(np.int64), scores[order].astype(np.float32))


class StoredVectors:
    """The build's vectors as the reranker reads them (faiss-like: ntotal, d, reconstruct_n, reconstruct_batch),
    from the database."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self.ntotal = len(store.vector_rows)
        self.d = int(store.manifest["embedder"]["dim"])

    def reconstruct_n(self, start: int, count: int) -> np.ndarray:
        where = sql.SQL("position >= {} AND position < {}").format(sql.Literal(int(start)), sql.Literal(int(start + count)))
        return self._fetch(where, np.arange(start, start + count))

    def reconstruct_batch(self, positions: np.ndarray) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.int64)
        return self._fetch(sql.SQL("position = ANY({})").format(sql.Literal(positions.tolist())), positions)

    def _fetch(self, where: sql.Composable, positions: np.ndarray) -> np.ndarray:
        """Vectors by COPY (text form, parsed by numpy in one go), in the order of `positions`."""
        store = self._store
        out = io.BytesIO()
        with store._pool.connection() as conn, conn.cursor() as cur:
            with cur.copy(sql.SQL("COPY (SELECT position, embedding FROM {} WHERE {}) TO STDOUT")
                          .format(store._t["vectors"], where)) as copy:
                for block in copy:
                    out.write(block)
        lines = out.getvalue().decode().splitlines()
        if not lines:
            return np.zeros((0, self.d), np.float32)
        found_positions = np.array([int(line.split("\t", 1)[0]) for line in lines], dtype=np.int64)
        text = ",".join(line.split("\t", 1)[1][1:-1] for line in lines)
        vectors = np.array(text.split(","), dtype=np.float32).reshape(len(lines), self.d)
        order = np.argsort(found_positions)
        at = np.searchsorted(found_positions[order], positions)
        return vectors[order][at]


class PostgresBuildView:
    """What the reranker, the evaluation and the web layer read of a build (as the embedded BuildView)."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.path = store.path
        self.manifest = store.manifest
        self.entries = LazyEntries(store)
        self.tokenizer = store.tokenizer
        self.vectors = StoredVectors(store)
        self.vector_rows = store.vector_rows
        self.offtopic = store.offtopic_vectors

    @property
    def build_id(self) -> str:
        return self.manifest["build_id"]
