"""How many server processes, and how many embedding threads each (no heavy imports: the load benchmark uses it)."""

from __future__ import annotations

import os


def default_workers() -> int:
    """One worker per core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def embedder_threads(workers: int) -> str:
    """Each worker's embedder gets its share of the cores, instead of every worker using them all."""
    return str(max(1, default_workers() // workers))
