"""The shared embedder: concurrent queries go out in batches, repeats come from the LRU, errors reach every waiter."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from assistant.embed import load_embedder
from assistant.embed_batching import BatchingEmbedder, FairTurns


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


def _until(condition, message: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.005)


def test_turns_go_to_the_oldest_request_first_and_a_paused_one_comes_back_before_younger_ones():
    turns = FairTurns()
    order: list[str] = []
    first_running = threading.Event()

    def request(name: str) -> None:
        with turns.turn():
            order.append(name)
            if name == "1":
                first_running.set()
                _until(lambda: turns.waiting == 5, "the paused request never queued again")  # it and 2-5

    with turns.turn():  # the oldest request
        threads = []
        for i in range(1, 6):
            threads.append(threading.Thread(target=request, args=(str(i),)))
            threads[-1].start()
            _until(lambda: turns.waiting == i, f"request {i} never queued")
        with turns.turn():  # nested: the same turn, no deadlock
            pass
        with turns.paused():  # as while waiting for an embedding batch: the next oldest runs
            assert first_running.wait(30)
        order.append("0 again")
    for thread in threads:
        thread.join(30)
    assert order == ["1", "0 again", "2", "3", "4", "5"]


def test_a_search_waiting_for_its_embedding_lets_the_next_one_join_the_batch(embedder):
    recording = Recording(embedder)
    batched = BatchingEmbedder(recording, window=5.0, max_batch=2)

    def search(text):
        with batched.turns.turn():  # both hold the single turn, except while waiting for the batch
            return batched.embed_queries([text])[0]

    with ThreadPoolExecutor(2) as pool:
        vectors = list(pool.map(search, ["短信签名审核要多久", "如何开发票"]))
    assert recording.calls == [2] and len(vectors) == 2
