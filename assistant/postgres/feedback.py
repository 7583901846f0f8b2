"""Feedback and the query log in PostgreSQL: the same interface as assistant.feedback.FeedbackStore, shared
by every `faq serve` pointed at the database. Tables live in the `faq` schema, next to the builds."""

from __future__ import annotations

import json
import uuid

import psycopg
from psycopg_pool import ConnectionPool

from assistant.feedback import MAX_COMMENT, VOTES, ClientVotes, FeedbackError
from assistant.postgres.connection import describe, open_pool

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS faq;
CREATE TABLE IF NOT EXISTS faq.searches (
    id BIGSERIAL PRIMARY KEY,
    created TIMESTAMPTZ NOT NULL DEFAULT now(),
    query TEXT NOT NULL,
    abstained BOOLEAN NOT NULL,
    entry_ids JSONB NOT NULL,
    build_id TEXT,
    surface TEXT NOT NULL,
    answer_id TEXT
);
CREATE TABLE IF NOT EXISTS faq.feedback (
    id BIGSERIAL PRIMARY KEY,
    answer_id TEXT NOT NULL UNIQUE,
    created TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated TIMESTAMPTZ NOT NULL DEFAULT now(),
    query TEXT NOT NULL,
    entry_id TEXT,
    vote SMALLINT NOT NULL CHECK (vote IN (-1, 0, 1)),
    comment TEXT,
    build_id TEXT,
    surface TEXT NOT NULL
);
"""
# Concurrent first starts of several replicas: one creates the tables, the others wait for it.
SCHEMA_LOCK = 0x6661715F66656564  # "faq_feed"


class PostgresFeedbackStore(ClientVotes):
    def __init__(self, url: str, pool: ConnectionPool | None = None) -> None:
        self.url = url
        self._pool = pool or open_pool(url, max_size=4)
        self._owns_pool = pool is None
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                conn.execute(SCHEMA)
        except psycopg.Error as exc:
            raise FeedbackError(f"cannot create the feedback tables in {describe(url)}: {exc}") from None

    def log_search(self, query: str, abstained: bool, entry_ids: list[str], build_id: str | None,
                   surface: str) -> str:
        """Logs one answer shown; returns its answer id, the key a vote on it is stored under."""
        answer_id = uuid.uuid4().hex
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO faq.searches (query, abstained, entry_ids, build_id, surface, answer_id) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (query, bool(abstained), json.dumps(entry_ids), build_id, surface, answer_id),
            )
        return answer_id

    def record_vote(self, answer_id: str, query: str, entry_id: str | None, vote: int, comment: str | None = None,
                    build_id: str | None = None, surface: str = "ui") -> int:
        """The latest vote on one answer (1, -1, or 0 withdrawn); a comment is kept unless a new one is given."""
        if vote not in VOTES or isinstance(vote, bool):
            raise FeedbackError("vote must be 1 (helpful), -1 (not helpful) or 0 (withdrawn)")
        if not answer_id or not isinstance(answer_id, str) or len(answer_id) > 64:
            raise FeedbackError("a vote needs the id of the answer it is about")
        if comment is not None:
            comment = comment.strip()[:MAX_COMMENT] or None
        with self._pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO faq.feedback (answer_id, query, entry_id, vote, comment, build_id, surface) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (answer_id) DO UPDATE SET updated = now(), "
                "vote = excluded.vote, comment = COALESCE(excluded.comment, feedback.comment), "
                "entry_id = excluded.entry_id RETURNING id",
                (answer_id, query, entry_id, vote, comment, build_id, surface),
            ).fetchone()
        return int(row[0])

    def rows(self) -> list[dict]:
        with self._pool.connection() as conn:
            cursor = conn.execute("SELECT * FROM faq.feedback ORDER BY id")
            names = [c.name for c in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def report(self, limit: int = 20) -> dict[str, list]:
        """The same report as the SQLite store: frequent unanswered questions, entries voted not helpful."""
        with self._pool.connection() as conn:
            abstained = conn.execute(
                "SELECT min(query), COUNT(*) n FROM faq.searches WHERE abstained GROUP BY lower(trim(query)) "
                "ORDER BY n DESC, MAX(id) DESC LIMIT %s", (limit,)
            ).fetchall()
            down = conn.execute(
                "SELECT COALESCE(entry_id, ''), COUNT(*) n, array_agg(query), array_agg(comment) "
                "FROM faq.feedback WHERE vote = -1 GROUP BY entry_id ORDER BY n DESC, MAX(updated) DESC LIMIT %s",
                (limit,),
            ).fetchall()
        down_voted = [(entry_id, count, sorted(set(queries)), [c for c in comments if c])
                      for entry_id, count, queries, comments in down]
        return {"abstained": [tuple(row) for row in abstained], "down_voted": down_voted}

    def close(self) -> None:
        if self._owns_pool:
            self._pool.close()
