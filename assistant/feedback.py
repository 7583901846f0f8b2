"""Feedback and query log in SQLite (WAL): what agents asked, what was missing, what was wrong."""

from __future__ import annotations

import json
import sqlite3
import threading
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
    created TEXT NOT NULL,
    query TEXT NOT NULL,
    vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
    entry_ids TEXT NOT NULL,
    build_id TEXT,
    comment TEXT,
    surface TEXT NOT NULL
);
"""


class FeedbackError(AssistantError):
    pass


class FeedbackStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise FeedbackError(f"cannot open the feedback database {path}: {exc}") from exc

    @staticmethod
    def _now() -> str:
        return datetime.now(timezone.utc).isoformat(timespec="seconds")

    def log_search(self, query: str, abstained: bool, entry_ids: list[str], build_id: str | None, surface: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO searches (created, query, abstained, entry_ids, build_id, surface) VALUES (?,?,?,?,?,?)",
                (self._now(), query, int(abstained), json.dumps(entry_ids), build_id, surface),
            )

    def add(self, query: str, vote: int, entry_ids: list[str], build_id: str | None,
            comment: str | None = None, surface: str = "api") -> int:
        if vote not in (-1, 1):
            raise FeedbackError("vote must be 1 (helpful) or -1 (not helpful)")
        with self._lock, self._db:
            cursor = self._db.execute(
                "INSERT INTO feedback (created, query, vote, entry_ids, build_id, comment, surface) "
                "VALUES (?,?,?,?,?,?,?)",
                (self._now(), query, vote, json.dumps(entry_ids), build_id, comment, surface),
            )
            return int(cursor.lastrowid)

    def rows(self) -> list[dict]:
        with self._lock:
            cursor = self._db.execute("SELECT * FROM feedback ORDER BY id")
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def report(self, limit: int = 20) -> dict[str, list[tuple[str, int]]]:
        """The most frequent abstained queries and down-voted queries: what the FAQ is missing."""
        with self._lock:
            abstained = self._db.execute(
                "SELECT query, COUNT(*) n FROM searches WHERE abstained = 1 GROUP BY lower(trim(query)) "
                "ORDER BY n DESC, MAX(id) DESC LIMIT ?", (limit,)
            ).fetchall()
            down = self._db.execute(
                "SELECT query, COUNT(*) n FROM feedback WHERE vote = -1 GROUP BY lower(trim(query)) "
                "ORDER BY n DESC, MAX(id) DESC LIMIT ?", (limit,)
            ).fetchall()
        return {"abstained": abstained, "down_voted": down}

    def close(self) -> None:
        self._db.close()
