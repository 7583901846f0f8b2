"""Publishing a build into PostgreSQL: `faq build --store postgresql://…`.

The build is made as usual (assistant.index: ingest, embed, BM25, the reranker's training), then copied into
a new schema (assistant.postgres.schema); BM25 term statistics and per-term impacts are computed there by
SQL from the stored jieba tokens, and one transaction marks the build complete and points `faq.published` at
it. Dense search probes the build's own inverted file (the cells the embedded store probes): each vector is
stored with its cell, the table in cell order, and the cells' centroids travel as a blob. Older builds beyond the previous one are dropped, as are schemas of killed builds.
"""

from __future__ import annotations

import io
import json
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import psycopg
from psycopg import sql
from psycopg.adapt import Dumper
from psycopg.pq import Format

from assistant.entry import FaqEntry
from assistant.index import bm25_text
from assistant.postgres.connection import check_reachable, describe, ensure_pgvector
from assistant.stores.embedded import BM25_TOKENS_FILE, IVF_FILE, VECTORS_FILE
from assistant.stores.vector_file import VectorFile
from assistant.postgres.schema import BUILD_LOCK, KEEP_BUILDS, create_shared, ident, schema_name
from assistant.tokenize import Tokenizer

# Build-directory files kept as blobs: what a server needs besides the tables (the rerank folder is added).
BLOB_FILES = ("terms.txt", "offtopic.npy", "sample_rows.npy")
CENTROIDS_BLOB = "ivf_centroids.npy"  # the inverted file's cell centroids (approximate builds)
SAMPLE_VECTORS_BLOB = "sample_vectors.npy"  # the vectors of the sample rows, in position order (dense statistics)
# A file is stored in parts: one value may hold at most 1 GB, and a server sends it whole (at 100k entries the
# answer-sentence vectors alone are 0.5 GB, at 1M 5 GB).
BLOB_PART_BYTES = 64 << 20
TABLES = """
CREATE TABLE {meta} (key TEXT PRIMARY KEY, value JSONB NOT NULL);
CREATE TABLE {blobs} (name TEXT NOT NULL, part INT NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (name, part));
CREATE TABLE {entries} (row INT PRIMARY KEY, id TEXT NOT NULL UNIQUE, vendor SMALLINT NOT NULL,
                        doc SMALLINT NOT NULL, group_no INT NOT NULL, data JSONB NOT NULL);
CREATE TABLE {vectors} (position INT PRIMARY KEY, row INT NOT NULL, vendor SMALLINT NOT NULL, doc SMALLINT NOT NULL,
                        cell INT NOT NULL, embedding vector({dim}) NOT NULL);
CREATE TABLE {entry_tokens} (row INT PRIMARY KEY, tokens TEXT[] NOT NULL);
CREATE TABLE {identifiers} (identifier TEXT NOT NULL, row INT NOT NULL, weight REAL NOT NULL,
                            vendor SMALLINT NOT NULL, doc SMALLINT NOT NULL);
"""
# BM25 as bm25s scores it (Lucene idf, Robertson term frequency), from the stored tokens.
STATISTICS = """
CREATE TABLE {terms} AS
    SELECT (row_number() OVER (ORDER BY term COLLATE "C") - 1)::int AS term_no, term, df,
           ln(1 + ({n}::float8 - df + 0.5) / (df + 0.5)) AS idf
    FROM (SELECT term, count(DISTINCT row)::int AS df FROM {entry_tokens}, unnest(tokens) AS term GROUP BY term) t;
CREATE UNIQUE INDEX ON {terms} (term);
CREATE TABLE {postings} AS
    SELECT t.term_no, c.row, c.tf, e.vendor, e.doc,
           (t.idf * c.tf / (c.tf + {k1}::float8 * (1 - {b}::float8 + {b}::float8 * c.length / {avgdl}::float8)))::real
               AS impact
    FROM (SELECT row, term, count(*)::int AS tf, cardinality(tokens) AS length
          FROM {entry_tokens}, unnest(tokens) AS term GROUP BY row, term, cardinality(tokens)) c
    JOIN {terms} t USING (term) JOIN {entries} e USING (row)
    ORDER BY t.term_no, c.row;
CREATE INDEX ON {postings} (term_no, impact DESC, row) INCLUDE (vendor, doc);
CREATE INDEX ON {postings} (row, term_no) INCLUDE (impact);
CREATE INDEX ON {identifiers} (identifier);
CREATE INDEX ON {vectors} (row) INCLUDE (position);
CREATE INDEX ON {vectors} (cell);
CREATE INDEX ON {entries} (group_no);
"""


def check_target(url: str) -> None:
    """The database can take a build: reachable, pgvector there or creatable (checked before building)."""
    check_reachable(url)
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_pgvector(conn, url)


def publish_build(url: str, build: Path, settings, log=print) -> str:
    """Copy the build directory `build` into the database and publish it; returns the build id."""
    check_reachable(url)
    manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
    build_id = manifest["build_id"]
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_pgvector(conn, url)
        create_shared(conn)
        if not conn.execute("SELECT pg_try_advisory_lock(%s)", (BUILD_LOCK,)).fetchone()[0]:
            log(f"another build is publishing into {describe(url)}: waiting for it")
            conn.execute("SELECT pg_advisory_lock(%s)", (BUILD_LOCK,))
        _drop_killed_builds(conn, log)
        schema = schema_name(build_id)
        with conn.transaction():
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            conn.execute("INSERT INTO faq.builds (build_id, schema_name, state, builder) VALUES (%s, %s, 'loading', %s)",
                         (build_id, schema, f"{socket.gethostname()} pid {os.getpid()}"))
        _load(conn, schema, build, manifest, settings, log)
        with conn.transaction():
            conn.execute("UPDATE faq.builds SET state = 'complete' WHERE build_id = %s", (build_id,))
            conn.execute("INSERT INTO faq.published (build_id) VALUES (%s) ON CONFLICT (only_one) DO UPDATE "
                         "SET build_id = excluded.build_id, published = now()", (build_id,))
        _prune(conn, build_id, log)
    log(f"published build {build_id} in {describe(url)} (schema {schema})")
    return build_id


def _drop_killed_builds(conn: psycopg.Connection, log) -> None:
    """Schemas of builds that never completed: we hold the build lock, so their builders are gone."""
    killed = conn.execute("SELECT build_id, schema_name FROM faq.builds WHERE state = 'loading'").fetchall()
    orphans = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'faq\\_build\\_%%' "
                           "AND nspname NOT IN (SELECT schema_name FROM faq.builds)").fetchall()
    for build_id, schema in killed:
        _drop(conn, schema, build_id)
    for (schema,) in orphans:
        _drop(conn, schema, None)
    if killed or orphans:
        log(f"removed {len(killed) + len(orphans)} leftovers of interrupted builds")


def _prune(conn: psycopg.Connection, keep: str, log) -> None:
    old = conn.execute("SELECT build_id, schema_name FROM faq.builds WHERE state = 'complete' AND build_id <> %s "
                       "ORDER BY created DESC OFFSET %s", (keep, KEEP_BUILDS - 1)).fetchall()
    for build_id, schema in old:
        _drop(conn, schema, build_id)


def _drop(conn: psycopg.Connection, schema: str, build_id: str | None) -> None:
    with conn.transaction():
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        if build_id is not None:
            conn.execute("DELETE FROM faq.builds WHERE build_id = %s", (build_id,))


def _names(schema: str, dim: int | None = None) -> dict:
    tables = ("meta", "blobs", "entries", "vectors", "entry_tokens", "identifiers", "terms", "postings")
    names = {table: ident(schema, table) for table in tables}
    if dim is not None:
        names["dim"] = sql.Literal(dim)
    return names


def _load(conn: psycopg.Connection, schema: str, build: Path, manifest: dict, settings, log) -> None:
    dim = int(manifest["embedder"]["dim"])
    names = _names(schema, dim)
    conn.execute(sql.SQL(TABLES).format(**names))
    conn.execute("SET maintenance_work_mem = '256MB'")
    entries = _read_entries(build)
    vendor, doc, group = (np.load(build / f"row_{name}.npy") for name in ("vendor", "doc", "group"))
    with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} (row, id, vendor, doc, group_no, data) FROM STDIN")
                                        .format(names["entries"])) as copy:
        for row, entry in enumerate(entries):
            copy.write_row((row, entry["id"], int(vendor[row]), int(doc[row]), int(group[row]),
                            json.dumps(entry, ensure_ascii=False)))
    log(f"postgres: {len(entries)} entries")
    centroids, cells = ivf_partition(build)
    _copy_vectors(conn, names, build, vendor, doc, cells)
    lengths = _copy_tokens(conn, names, build, entries, settings)
    bm25 = _bm25_parameters(build, lengths)
    conn.execute(sql.SQL(STATISTICS).format(**names, **{k: sql.Literal(v) for k, v in bm25.items()}))
    _copy_identifiers(conn, names, build, vendor, doc)
    conn.execute(sql.SQL("INSERT INTO {} VALUES ('manifest', %s), ('bm25', %s)").format(names["meta"]),
                 (json.dumps(manifest, ensure_ascii=False), json.dumps(bm25)))
    _copy_blobs(conn, names, build, centroids)
    for table in ("entries", "vectors", "postings", "terms", "identifiers"):
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(names[table]))


def _read_entries(build: Path) -> list[dict]:
    with (build / "entries.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def ivf_partition(build: Path) -> tuple[np.ndarray | None, np.ndarray]:
    """The build's inverted file as the embedded store probes it: its cells' centroids and the cell of each
    vector (a build with an exact index: no centroids, every vector in cell 0)."""
    count = VectorFile(build / VECTORS_FILE).ntotal
    if not (build / IVF_FILE).exists():
        return None, np.zeros(count, dtype=np.int32)
    ivf = faiss.read_index(str(build / IVF_FILE), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
    cells = np.full(count, -1, dtype=np.int32)
    for cell in range(ivf.nlist):
        size = ivf.invlists.list_size(cell)
        if size:
            cells[faiss.rev_swig_ptr(ivf.invlists.get_ids(cell), size)] = cell
    if ivf.ntotal != count or np.any(cells < 0):
        raise ValueError(f"{build / IVF_FILE} does not hold each of the build's {count} vectors once")
    return ivf.quantizer.reconstruct_n(0, ivf.nlist), cells


def _copy_vectors(conn, names, build: Path, vendor: np.ndarray, doc: np.ndarray, cells: np.ndarray) -> None:
    """Binary COPY in cell order (the cells a query probes are runs of pages), built by numpy a block at a time
    (text formatting of 200k × 384 floats takes minutes)."""
    vectors = VectorFile(build / VECTORS_FILE)
    rows = np.load(build / "vector_rows.npy").astype(np.int64)
    layout = np.dtype([("fields", ">i2"), ("l0", ">i4"), ("position", ">i4"), ("l1", ">i4"), ("row", ">i4"),
                       ("l2", ">i4"), ("vendor", ">i2"), ("l3", ">i4"), ("doc", ">i2"), ("l4", ">i4"), ("cell", ">i4"),
                       ("l5", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("vector", ">f4", (vectors.d,))])
    order = np.argsort(cells, kind="stable")
    with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} (position, row, vendor, doc, cell, embedding) FROM STDIN "
                                                "(FORMAT BINARY)").format(names["vectors"])) as copy:
        copy.write(b"PGCOPY\n\xff\r\n\x00" + bytes(8))  # signature, flags, header extension length
        for start in range(0, vectors.ntotal, 8192):
            positions = order[start : start + 8192]
            records = np.zeros(len(positions), dtype=layout)
            records["fields"], records["l0"], records["l1"], records["l2"], records["l3"] = 6, 4, 4, 2, 2
            records["l4"], records["l5"], records["dim"] = 4, 4 + 4 * vectors.d, vectors.d
            block_rows = rows[positions]
            records["position"], records["row"], records["cell"] = positions, block_rows, cells[positions]
            records["vendor"], records["doc"] = vendor[block_rows], doc[block_rows]
            records["vector"] = vectors.reconstruct_batch(positions)
            copy.write(records.tobytes())
        copy.write(b"\xff\xff")


class QueryVector:
    """A vector sent to pgvector in its binary form (dim, unused, float4 × dim, network order)."""

    def __init__(self, vector: np.ndarray) -> None:
        self.vector = np.asarray(vector, dtype=">f4").reshape(-1)


class QueryVectorDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: QueryVector) -> bytes:
        return struct.pack(">hh", len(obj.vector), 0) + obj.vector.tobytes()


psycopg.adapters.register_dumper(QueryVector, QueryVectorDumper)


def _copy_tokens(conn, names, build: Path, entries: list[dict], settings) -> np.ndarray:
    """The jieba tokens bm25s indexed, as the build recorded them (older builds: the build's dictionary over
    the same text); returns each entry's length."""
    lengths = np.zeros(len(entries), dtype=np.int64)
    with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} (row, tokens) FROM STDIN").format(names["entry_tokens"])) as copy:
        for row, tokens in enumerate(_entry_tokens(build, entries, settings)):
            lengths[row] = len(tokens)
            copy.write_row((row, tokens))
    return lengths


def _entry_tokens(build: Path, entries: list[dict], settings):
    recorded = build / BM25_TOKENS_FILE
    if recorded.exists():
        with recorded.open(encoding="utf-8") as lines:
            for line in lines:
                yield json.loads(line)
        return
    tokenizer = Tokenizer((build / "terms.txt").read_text(encoding="utf-8").splitlines(), settings.cache_dir / "jieba")
    seen: dict[str, list[str]] = {}  # replicated texts (a scaled benchmark corpus) are tokenized once
    for data in entries:
        text = bm25_text(FaqEntry.from_json(data))
        if text not in seen:
            seen[text] = tokenizer.tokens(text) or ["<empty>"]
        yield seen[text]


def _bm25_parameters(build: Path, lengths: np.ndarray) -> dict:
    params = json.loads((build / "bm25" / "params.index.json").read_text(encoding="utf-8"))
    if params.get("method", "lucene") not in ("lucene", "robertson") or params.get("idf_method") not in (None, "lucene"):
        raise ValueError(f"BM25 variant {params.get('method')} is not computed by the PostgreSQL store")
    return {"k1": float(params.get("k1", 1.5)), "b": float(params.get("b", 0.75)), "n": int(len(lengths)),
            "avgdl": float(lengths.mean()) if len(lengths) else 1.0}


def _copy_identifiers(conn, names, build: Path, vendor: np.ndarray, doc: np.ndarray) -> None:
    """The build's identifier postings (keys in order; rows and weights as flat arrays with start offsets)."""
    keys = json.loads((build / "identifiers.json").read_text(encoding="utf-8"))
    rows, weights, starts = (np.load(build / f"identifier_{name}.npy") for name in ("rows", "weights", "start"))
    with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} (identifier, row, weight, vendor, doc) FROM STDIN")
                                        .format(names["identifiers"])) as copy:
        for key, start, end in zip(keys, starts[:-1].tolist(), starts[1:].tolist()):
            for row, weight in zip(rows[start:end].tolist(), weights[start:end].tolist()):
                copy.write_row((key, row, weight, int(vendor[row]), int(doc[row])))


def _sample_vectors(build: Path) -> np.ndarray:
    """Every vector of the sample rows, in position order (read once by a server instead of row by row)."""
    vector_rows = np.load(build / "vector_rows.npy")
    positions = np.flatnonzero(np.isin(vector_rows, np.load(build / "sample_rows.npy")))
    return VectorFile(build / VECTORS_FILE).reconstruct_batch(positions)


def _parts(handle) -> Iterator[bytes]:
    """A file's parts of BLOB_PART_BYTES; an empty file is one empty part."""
    data = handle.read(BLOB_PART_BYTES)
    yield data
    while data := handle.read(BLOB_PART_BYTES):
        yield data


def _copy_blobs(conn, names, build: Path, centroids: np.ndarray | None) -> None:
    files = [build / name for name in BLOB_FILES]
    files += sorted(p for p in (build / "rerank").glob("*") if p.is_file())
    arrays = {SAMPLE_VECTORS_BLOB: _sample_vectors(build)}
    if centroids is not None:
        arrays[CENTROIDS_BLOB] = centroids
    insert = sql.SQL("INSERT INTO {} (name, part, data) VALUES (%s, %s, %s)").format(names["blobs"])
    with conn.cursor() as cur:
        for path in (p for p in files if p.exists()):
            with path.open("rb") as handle:
                for part, data in enumerate(_parts(handle)):
                    cur.execute(insert, (str(path.relative_to(build)), part, data))
        for name, array in arrays.items():
            data = io.BytesIO()
            np.save(data, np.asarray(array, dtype=np.float32), allow_pickle=False)
            cur.execute(insert, (name, 0, data.getvalue()))
