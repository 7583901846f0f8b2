"""Meaning as pairing evidence: how well a paragraph answers a question.

The shipped embedder (multilingual-e5-small) reads each question in its query
role and each paragraph in its passage role; their cosine is the score. Vectors
are cached on disk by content hash, so a rebuild of an unchanged document
embeds nothing and yields the very same floats (ingest stays deterministic).
Always the bundled model, whatever embedder the search index uses: the pairing
of a document must not depend on a search setting.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from assistant.embed import DEFAULT_EMBEDDER, Embedder, load_embedder

class MeaningScorer:
    """Question–paragraph cosines from an embedder, vectors cached on disk by role and content hash."""

    def __init__(self, embedder: Embedder, cache_dir: Path | None) -> None:
        self.embedder = embedder
        self.cache_dir = cache_dir
        self._vectors: dict[str, np.ndarray] | None = None

    @property
    def _path(self) -> Path | None:
        if self.cache_dir is None:
            return None
        slug = "".join(c if c.isalnum() or c in "._-" else "_" for c in self.embedder.id)
        return self.cache_dir / "pairing" / f"vectors-{slug}.npz"

    def prepare(self, queries: list[str], passages: list[str]) -> None:
        """Embed what is missing of a whole document at once, and write the cache once."""
        added = self._add(queries, "query") + self._add(passages, "passage")
        if added:
            self._save()

    def similarity(self, questions: list[str], paragraphs: list[str]) -> np.ndarray:
        """Cosine of every (paragraph, question): shape (len(paragraphs), len(questions))."""
        if not questions or not paragraphs:
            return np.zeros((len(paragraphs), len(questions)), dtype=np.float32)
        query = self._embed(questions, "query")
        passage = self._embed(paragraphs, "passage")
        return passage @ query.T

    def _embed(self, texts: list[str], role: str) -> np.ndarray:
        if self._add(texts, role):
            self._save()
        vectors = self._load()
        return np.stack([vectors[_key(role, text)] for text in texts])

    def _add(self, texts: list[str], role: str) -> int:
        vectors = self._load()
        missing = sorted({_key(role, text): text for text in texts if _key(role, text) not in vectors}.items())
        if missing:
            embed = self.embedder.embed_queries if role == "query" else self.embedder.embed_passages
            fresh = embed([text for _, text in missing])
            vectors.update(zip((key for key, _ in missing), fresh.astype(np.float32)))
        return len(missing)

    def _load(self) -> dict[str, np.ndarray]:
        if self._vectors is None:
            self._vectors = {}
            path = self._path
            if path is not None and path.exists():
                try:
                    with np.load(path, allow_pickle=False) as data:
                        self._vectors = dict(zip(data["keys"].tolist(), data["vectors"]))
                except (OSError, ValueError, KeyError):
                    self._vectors = {}  # a damaged cache only costs time
        return self._vectors

    def _save(self) -> None:
        path = self._path
        if path is None or not self._vectors:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
        os.close(fd)
        np.savez(tmp, keys=np.array(list(self._vectors), dtype=str), vectors=np.stack(list(self._vectors.values())))
        os.replace(tmp, path)


def _key(role: str, text: str) -> str:
    return hashlib.sha256(f"{role}\0{text}".encode("utf-8")).hexdigest()


_DEFAULT: dict[Path | None, MeaningScorer] = {}


def default_scorer(cache_dir: Path | None = None) -> MeaningScorer:
    """The bundled embedder with its cache under the settings' cache directory (one per process)."""
    if cache_dir is None:
        from assistant.config import Settings

        cache_dir = Settings.from_env().cache_dir
    if cache_dir not in _DEFAULT:
        _DEFAULT[cache_dir] = MeaningScorer(load_embedder(DEFAULT_EMBEDDER), cache_dir)
    return _DEFAULT[cache_dir]
