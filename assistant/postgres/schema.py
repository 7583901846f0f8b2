"""Where builds live in PostgreSQL.

    faq.builds        one row per build: its schema and state (loading → complete)
    faq.published     one row: the build readers use; one UPDATE switches it
    faq_build_<id>    one schema per build:
        meta          key → jsonb: the build's manifest, BM25 parameters (k1, b, N, average length)
        blobs         name → bytea: the jieba dictionary, off-topic and sample vectors, the cells' centroids,
                      the rerank files
        entries       row, id, vendor, doc, group_no, data (the entry as JSON)
        vectors       position, row, vendor, doc, cell, embedding vector(d), in cell order with an index on
                      the cell: a query ranks the vectors of the inverted-file cells the embedded store
                      probes, exactly (inner product: unit vectors, so their cosine)
        entry_tokens  row, tokens text[]: the jieba tokens BM25 reads
        terms         term_no, term, df, idf: term statistics, computed in the database
        postings      term_no, row, tf, impact: BM25 of each (term, entry), computed in the database;
                      a query sums the impacts of its terms
        identifiers   identifier, row, weight: error codes and API names, indexed for exact matching
A build is written into its schema while `faq.published` still names the previous one; a killed build leaves
a `loading` schema that the next build drops.
"""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

SHARED = """
CREATE SCHEMA IF NOT EXISTS faq;
CREATE TABLE IF NOT EXISTS faq.builds (
    build_id TEXT PRIMARY KEY,
    schema_name TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL CHECK (state IN ('loading', 'complete')),
    created TIMESTAMPTZ NOT NULL DEFAULT now(),
    builder TEXT
);
CREATE TABLE IF NOT EXISTS faq.published (
    only_one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_one),
    build_id TEXT NOT NULL REFERENCES faq.builds (build_id),
    published TIMESTAMPTZ NOT NULL DEFAULT now()
);
"""
SHARED_LOCK = 0x6661715F73636865  # "faq_sche": creating the shared tables
BUILD_LOCK = 0x6661715F6275696C  # "faq_buil": one build at a time per database
KEEP_BUILDS = 2  # the published build and the one before it (servers still on it finish their requests)


def schema_name(build_id: str) -> str:
    return "faq_build_" + re.sub(r"[^a-z0-9_]", "_", build_id.lower())


def ident(schema: str, table: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


def create_shared(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SHARED_LOCK,))
        conn.execute(SHARED)


def published(conn: psycopg.Connection) -> tuple[str, str] | None:
    """(build id, schema) of the published build, or None when the database holds none."""
    found = conn.execute(
        "SELECT to_regclass('faq.published') IS NOT NULL AND to_regclass('faq.builds') IS NOT NULL").fetchone()
    if not found[0]:
        return None
    return conn.execute("SELECT p.build_id, b.schema_name FROM faq.published p JOIN faq.builds b USING (build_id) "
                        "WHERE b.state = 'complete'").fetchone()
