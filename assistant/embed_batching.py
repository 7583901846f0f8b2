"""Many agents, one embedder: queries that arrive within a few milliseconds are embedded in one call,
recent query vectors are remembered (agents ask the same questions), and the searches waiting on them take
turns at the Python interpreter oldest first."""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import OrderedDict
from concurrent.futures import Future
from contextlib import contextmanager

import numpy as np

from assistant.embed import Embedder

WINDOW_SECONDS = 0.003
MAX_BATCH = 64
CACHED_QUERIES = 2048


class QueryVectorCache:
    """A small LRU of query text → vector, safe across threads."""

    def __init__(self, size: int = CACHED_QUERIES) -> None:
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, text: str) -> np.ndarray | None:
        with self._lock:
            vector = self._vectors.get(text)
            if vector is None:
                self.misses += 1
                return None
            self._vectors.move_to_end(text)
            self.hits += 1
            return vector

    def put(self, text: str, vector: np.ndarray) -> None:
        if self.size <= 0:
            return
        vector = np.array(vector, dtype=np.float32)
        vector.setflags(write=False)
        with self._lock:
            self._vectors[text] = vector
            self._vectors.move_to_end(text)
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)


class FairTurns:
    """Turns at running Python code, handed out oldest request first.

    A process runs one thread's Python at a time (the GIL). Left to the GIL, the searches of many agents
    interleave in no order, so some wait for nearly all the others and the latency tail grows; in turns, each
    search runs as soon as those that came before it are done. A search gives its turn up while it waits for
    its embedding batch (`paused`) and gets it back before any younger search."""

    def __init__(self, slots: int = 1) -> None:
        self._free = slots
        self._lock = threading.Lock()
        self._waiting: list[tuple[int, threading.Event]] = []  # a heap: the oldest ticket first
        self._tickets = itertools.count()
        self._held = threading.local()  # this thread's ticket and how deeply it holds its turn

    @property
    def waiting(self) -> int:
        """Threads waiting for a turn."""
        with self._lock:
            return len(self._waiting)

    @contextmanager
    def turn(self):
        """Hold a turn for a whole request; nested calls in the same thread share it."""
        held = self._held
        if getattr(held, "depth", 0):
            held.depth += 1
            try:
                yield
            finally:
                held.depth -= 1
            return
        held.ticket = next(self._tickets)
        self._acquire(held.ticket)
        held.depth = 1
        try:
            yield
        finally:
            held.depth = 0
            self._release()

    @contextmanager
    def paused(self):
        """Let others run while this thread waits (outside Python); back in line with its first ticket."""
        held = self._held
        if not getattr(held, "depth", 0):
            yield
            return
        self._release()
        try:
            yield
        finally:
            self._acquire(held.ticket)

    def _acquire(self, ticket: int) -> None:
        with self._lock:
            if self._free > 0:
                self._free -= 1
                return
            handed_over = threading.Event()
            heapq.heappush(self._waiting, (ticket, handed_over))
        handed_over.wait()

    def _release(self) -> None:
        with self._lock:
            if self._waiting:
                heapq.heappop(self._waiting)[1].set()  # the turn passes straight to the oldest waiter
            else:
                self._free += 1


class BatchingEmbedder:
    """Wraps an Embedder: `embed_queries` from many threads is served by one background thread that
    embeds whatever arrived within `window` seconds (up to `max_batch` texts) in a single call."""

    def __init__(self, embedder: Embedder, window: float = WINDOW_SECONDS, max_batch: int = MAX_BATCH,
                 cache_size: int = CACHED_QUERIES, turns: FairTurns | None = None) -> None:
        self.inner = embedder
        self.turns = turns or FairTurns()
        self.spec = embedder.spec
        self.window = window
        self.max_batch = max_batch
        self.cache = QueryVectorCache(cache_size)
        self._pending: list[tuple[str, Future]] = []
        self._wake = threading.Condition()
        self._worker: threading.Thread | None = None
        self.batches = 0

    @property
    def id(self) -> str:
        return self.inner.id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self.inner.embed_passages(texts)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        vectors: list[np.ndarray | Future] = []
        for text in texts:
            cached = self.cache.get(text)
            vectors.append(cached if cached is not None else self._submit(text))
        waiting = [v for v in vectors if isinstance(v, Future)]
        if waiting:
            with self.turns.paused():
                for future in waiting:
                    future.exception()  # waits; an error is raised below, in this thread's turn
        rows = [v.result() if isinstance(v, Future) else v for v in vectors]
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, self.dim), dtype=np.float32)

    def _submit(self, text: str) -> Future:
        future: Future = Future()
        with self._wake:
            self._pending.append((text, future))
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="query-embedding", daemon=True)
                self._worker.start()
            self._wake.notify()
        return future

    def _take_batch(self) -> list[tuple[str, Future]]:
        with self._wake:
            while not self._pending:
                self._wake.wait()
            # Let the others who are asking right now join this batch.
            self._wake.wait_for(lambda: len(self._pending) >= self.max_batch, timeout=self.window)
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
        return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            unique = list(dict.fromkeys(text for text, _ in batch))
            try:
                vectors = self.inner.embed_queries(unique)
            except BaseException as exc:  # every waiter gets the error, none hangs
                for _, future in batch:
                    future.set_exception(exc)
                continue
            self.batches += 1
            by_text = dict(zip(unique, vectors))
            for text in unique:
                self.cache.put(text, by_text[text])
            for text, future in batch:
                future.set_result(by_text[text])
