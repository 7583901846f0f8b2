"""Feedback and query log in SQLite (WAL): what agents asked, what was missing, what was wrong.

Every answer shown gets an answer id (`log_search`); a vote is stored against that answer and the
entry it quoted, one row per answer: voting again replaces the vote, vote 0 withdraws it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path

from assistant.errors import AssistantError

SCHEMA = """
CREATE TABLE IF NOT EXISTS searches (
    id INTEGER PRIMARY KEY,
    created TEXT NOT NULL,
    query TEXT NOT NULL,
    abstained INTEGER NOT NULL,
    entry_ids TEXT NOT NULL,
    build_id TEXT,
    surface TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    answer_id TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    query TEXT NOT NULL,
    entry_id TEXT,
    vote INTEGER NOT NULL CHECK (vote IN (-1, 0, 1)),
    comment TEXT,
    build_id TEXT,
    surface TEXT NOT NULL
);
"""
VOTES = {-1: "not helpful", 0: "withdrawn", 1: "helpful"}
MAX_COMMENT = 2000


class FeedbackError(AssistantError):
    pass


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ClientVotes:
    """`add`, for stores that implement `record_vote` (SQLite here, PostgreSQL in assistant.postgres)."""

    def add(self, query: str, vote: int, entry_ids: list[str], build_id: str | None,
            comment: str | None = None, surface: str = "api") -> int:
        """A vote from a client without answer ids (POST /api/feedback): the first entry is the quoted one."""
        if vote not in (-1, 1):
            raise FeedbackError("vote must be 1 (helpful) or -1 (not helpful)")
        return self.record_vote(uuid.uuid4().hex, query, entry_ids[0] if entry_ids else None, vote, comment,
                                build_id, surface)


class FeedbackStore(ClientVotes):
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._migrate()
            self._db.executescript(SCHEMA)
            self._add_column("searches", "answer_id", "TEXT")
        except (OSError, sqlite3.Error) as exc:
            raise FeedbackError(f"cannot open the feedback database {path}: {exc}") from exc

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}

    def _add_column(self, table: str, column: str, kind: str) -> None:
        if column not in self._columns(table):
            self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def _migrate(self) -> None:
        """Databases of the first release kept one row per click with all result ids: keep them as votes."""
        if "entry_ids" not in self._columns("feedback"):
            return
        with self._db:
            self._db.execute("ALTER TABLE feedback RENAME TO feedback_v1")
            self._db.executescript(SCHEMA)
            for row_id, created, query, vote, entry_ids, build_id, comment, surface in self._db.execute(
                "SELECT id, created, query, vote, entry_ids, build_id, comment, surface FROM feedback_v1"
            ).fetchall():
                ids = json.loads(entry_ids or "[]")
                self._db.execute(
                    "INSERT INTO feedback (answer_id, created, updated, query, entry_id, vote, comment, build_id, "
                    "surface) VALUES (?,?,?,?,?,?,?,?,?)",
                    (f"v1-{row_id}", created, created, query, ids[0] if ids else None, vote, comment, build_id,
                     surface),
                )
            self._db.execute("DROP TABLE feedback_v1")

    def log_search(self, query: str, abstained: bool, entry_ids: list[str], build_id: str | None,
                   surface: str) -> str:
        """Logs one answer shown; returns its answer id, the key a vote on it is stored under."""
        answer_id = uuid.uuid4().hex
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO searches (created, query, abstained, entry_ids, build_id, surface, answer_id) "
                "VALUES (?,?,?,?,?,?,?)",
                (_now(), query, int(abstained), json.dumps(entry_ids), build_id, surface, answer_id),
            )
        return answer_id

    def record_vote(self, answer_id: str, query: str, entry_id: str | None, vote: int, comment: str | None = None,
                    build_id: str | None = None, surface: str = "ui") -> int:
        """Stores the latest vote on one answer (1 helpful, -1 not helpful, 0 withdrawn); returns its row id.

        A comment is kept when a later click changes only the vote, and replaced when one is given."""
        if vote not in VOTES or isinstance(vote, bool):
            raise FeedbackError("vote must be 1 (helpful), -1 (not helpful) or 0 (withdrawn)")
        if not answer_id or not isinstance(answer_id, str) or len(answer_id) > 64:
            raise FeedbackError("a vote needs the id of the answer it is about")
        if comment is not None:
            comment = comment.strip()[:MAX_COMMENT] or None
        now = _now()
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO feedback (answer_id, created, updated, query, entry_id, vote, comment, build_id, surface) "
                "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(answer_id) DO UPDATE SET updated = excluded.updated, "
                "vote = excluded.vote, comment = COALESCE(excluded.comment, feedback.comment), "
                "entry_id = excluded.entry_id",
                (answer_id, now, now, query, entry_id, vote, comment, build_id, surface),
            )
            row = self._db.execute("SELECT id FROM feedback WHERE answer_id = ?", (answer_id,)).fetchone()
        return int(row[0])

    def rows(self) -> list[dict]:
        with self._lock:
            cursor = self._db.execute("SELECT * FROM feedback ORDER BY id")
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def report(self, limit: int = 20) -> dict[str, list]:
        """What the FAQ is missing or gets wrong.

        `abstained`: (query, count), the most frequent questions without an answer;
        `down_voted`: (entry_id, count, queries, comments), the entries most often voted not helpful
        (latest vote per answer), with what agents asked and wrote."""
        with self._lock:
            abstained = self._db.execute(
                "SELECT query, COUNT(*) n FROM searches WHERE abstained = 1 GROUP BY lower(trim(query)) "
                "ORDER BY n DESC, MAX(id) DESC LIMIT ?", (limit,)
            ).fetchall()
            down = self._db.execute(
                "SELECT COALESCE(entry_id, ''), COUNT(*) n, json_group_array(query), "
                "json_group_array(comment) FROM feedback WHERE vote = -1 GROUP BY entry_id "
                "ORDER BY n DESC, MAX(updated) DESC LIMIT ?", (limit,)
            ).fetchall()
        down_voted = [
            (entry_id, count, sorted(set(json.loads(queries))), [c for c in json.loads(comments) if c])
            for entry_id, count, queries, comments in down
        ]
        return {"abstained": [tuple(row) for row in abstained], "down_voted": down_voted}

    def close(self) -> None:
        self._db.close()


def open_feedback(settings):
    """Where feedback and the query log go: the database of `--store postgresql://…` / FAQ_DATABASE_URL,
    shared by every replica, else SQLite in the data directory."""
    if settings.database_url:
        from assistant.postgres.feedback import PostgresFeedbackStore

        return PostgresFeedbackStore(settings.database_url)
    return FeedbackStore(settings.data_dir / "feedback.sqlite3")
