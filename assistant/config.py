"""Where the assistant finds its corpus and keeps what it builds.

Defaults point into the project checkout; environment variables override them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _path_from_env(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else default


@dataclass(frozen=True)
class Settings:
    corpus_dir: Path
    index_dir: Path
    data_dir: Path
    # Caches the app owns (jieba's prefix dictionary, embeddings by content hash): never a shared /tmp.
    cache_dir: Path
    # The chat's "hand over to a person" step when no FAQ entry answers (text and optional link).
    handover_text: str = ""
    handover_url: str | None = None
    # PostgreSQL holding the published build, feedback and the query log (`--store`, FAQ_DATABASE_URL);
    # None: the index directory and SQLite.
    database_url: str | None = None

    @property
    def manifest_path(self) -> Path:
        return self.corpus_dir / "manifest.toml"

    @property
    def glossary_path(self) -> Path:
        return self.corpus_dir / "glossary.tsv"

    @property
    def error_codes_path(self) -> Path:
        return self.corpus_dir / "error_codes.tsv"

    @property
    def terms_path(self) -> Path:
        return self.corpus_dir / "terms.txt"

    @property
    def offtopic_path(self) -> Path:
        return self.corpus_dir / "offtopic.txt"

    @property
    def eval_queries_path(self) -> Path:
        return self.corpus_dir / "eval" / "labelled.jsonl"

    @property
    def decisive_path(self) -> Path:
        return self.corpus_dir / "decisive.tsv"

    @property
    def aliases_path(self) -> Path:
        return self.corpus_dir / "aliases.tsv"


    @classmethod
    def from_env(cls) -> "Settings":
        data_dir = _path_from_env("FAQ_DATA_DIR", PROJECT_ROOT / "data")
        return cls(
            corpus_dir=_path_from_env("FAQ_CORPUS_DIR", PROJECT_ROOT / "corpus"),
            index_dir=_path_from_env("FAQ_INDEX_DIR", PROJECT_ROOT / "index"),
            data_dir=data_dir,
            cache_dir=_path_from_env("FAQ_CACHE_DIR", data_dir / "cache"),
            handover_text=os.environ.get("FAQ_HANDOVER_TEXT", ""),
            handover_url=os.environ.get("FAQ_HANDOVER_URL") or None,
            database_url=os.environ.get("FAQ_DATABASE_URL", "").strip() or None,
        )
