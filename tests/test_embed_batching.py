"""The shared embedder: concurrent queries go out in batches, repeats come from the LRU, errors reach every waiter."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from assistant.embed import load_embedder
from assistant.embed_batching import BatchingEmbedder


class Recording:
    """The real embedder, with a record of each call's batch."""

    def __init__(self, inner, fail: bool = False) -> None:
        self.inner, self.spec, self.fail = inner, inner.spec, fail
        self.calls: list[int] = []

    id = property(lambda self: self.inner.id)
    dim = property(lambda self: self.inner.dim)

    def embed_queries(self, texts):
        self.calls.append(len(texts))
        if self.fail:
            raise RuntimeError("embedder down")
        return self.inner.embed_queries(texts)


@pytest.fixture(scope="module")
def embedder():
    return load_embedder()


def test_concurrent_queries_share_batches_and_get_their_own_vectors(embedder):
    recording = Recording(embedder)
    batched = BatchingEmbedder(recording, window=0.05)
    questions = [f"短信签名审核要多久 {i}" for i in range(40)]
    barrier = threading.Barrier(40)

    def ask(text):
        barrier.wait()
        return batched.embed_queries([text])[0]

    with ThreadPoolExecutor(40) as pool:
        vectors = list(pool.map(ask, questions))
    assert sum(recording.calls) == 40 and len(recording.calls) < 40 and max(recording.calls) > 1
    alone = embedder.embed_queries(questions[:3])
    assert all(float(np.dot(vectors[i], alone[i])) > 0.999 for i in range(3))


def test_a_repeated_question_comes_from_the_lru(embedder):
    recording = Recording(embedder)
    batched = BatchingEmbedder(recording, cache_size=2)
    first = batched.embed_queries(["如何开发票"])
    again = batched.embed_queries(["如何开发票"])
    assert recording.calls == [1] and np.array_equal(first, again) and batched.cache.hits == 1
    batched.embed_queries(["a", "b"])  # pushes 如何开发票 out of a 2-entry LRU
    batched.embed_queries(["如何开发票"])
    assert sum(recording.calls) == 4


def test_an_embedder_error_reaches_every_waiter_and_none_hangs(embedder):
    batched = BatchingEmbedder(Recording(embedder, fail=True), window=0.02)
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(batched.embed_queries, [f"q{i}"]) for i in range(8)]
        for future in futures:
            with pytest.raises(RuntimeError, match="embedder down"):
                future.result(timeout=30)
