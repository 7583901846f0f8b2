"""Stores that hold a build: embedded (files: FAISS, bm25s, compact entries) and PostgreSQL (pgvector)."""

from assistant.stores.base import NO_FILTER, Candidates, DenseSample, Filter, Store, open_store

__all__ = ["NO_FILTER", "Candidates", "DenseSample", "Filter", "Store", "open_store"]
