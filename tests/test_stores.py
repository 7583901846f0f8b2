"""The embedded store behind the store protocol: lazy entries, integer groups, filters applied inside the
store, exact below the size threshold and an inverted file above it (8-bit codes, product-quantized above a
vector count), re-scored exactly from the vector file. A small store written by the build's own writers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import faiss
import numpy as np
import pytest

from assistant.entry import FaqEntry, Source
from assistant.stores import NO_FILTER, Filter, Store
from assistant.index import IndexCorruptError, load_build
from assistant.stores.embedded import IVF_FILE, VECTORS_FILE, EmbeddedStore, _top
from assistant.stores import embedded_build
from assistant.stores.embedded_build import PQ_RESCORED, ivf_nprobe, pq_subquantizers, write_store_files
from assistant.stores.preload import CHUNK
from assistant.stores.vector_file import ANNOUNCED_RUNS, VectorFile, VectorFileError
from assistant.tokenize import Tokenizer

DIM = 32
DOCS = {"tencent": ["t-2025", "t-2024"], "aliyun": ["a-2025"]}
TOPICS = ["签名", "模板", "发送", "账单", "套餐", "退款", "国际短信", "验证码"]


def _entries(count: int) -> list[FaqEntry]:
    entries = []
    for i in range(count):
        vendor = "tencent" if i % 3 else "aliyun"
        docs = DOCS[vendor]
        topic = TOPICS[i % len(TOPICS)]
        for edition, doc in enumerate(docs):  # every question in each of its vendor's editions, newest first
            question = f"{topic}问题{i}" + (f" 错误码 {1000 + i}" if i % 5 == 0 else "")
            answer = f"{topic}的回答{i}" + (f"，见 {2000 + i}" if i % 7 == 0 else "")
            entries.append(FaqEntry(f"{doc}-{i}", vendor, "腾讯云 Tencent Cloud" if vendor == "tencent" else "阿里云 Alibaba Cloud",
                                    "短信", doc, doc, None, None, question, answer, Source("x.md", 1, 2),
                                    group=f"g{i}"))
    # rows grouped per doc, as a build ingests them (edition by edition)
    return sorted(entries, key=lambda e: [d for ds in DOCS.values() for d in ds].index(e.doc))


def _write(folder, entries, approximate_above=10_000, seed=0, compressed_above=None):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(2 * len(entries), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = np.repeat(np.arange(len(entries)), 2)
    tokenizer = Tokenizer(TOPICS, folder / "jieba")
    tokens = [tokenizer.tokens(f"{e.question}\n{e.answer}") for e in entries]
    thresholds = {"approximate_above": approximate_above}
    if compressed_above is not None:
        thresholds["compressed_above"] = compressed_above
    info = write_store_files(folder, entries, vectors, rows, tokens, {"aliyun": ["阿里"]}, **thresholds)
    np.save(folder / "offtopic.npy", vectors[:3])
    manifest = {"build_id": "test", "embedder": {"id": "x", "spec": "x", "dim": DIM}, **info}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return EmbeddedStore(folder, manifest, tokenizer), vectors, rows


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    entries = _entries(60)
    store, vectors, rows = _write(tmp_path_factory.mktemp("store"), entries)
    return store, entries, vectors, rows


def _exact_best(vectors, rows, query, n):
    best = np.full(n, -2.0, dtype=np.float32)
    np.maximum.at(best, rows, vectors @ query)
    return best


def test_the_embedded_store_follows_the_protocol_and_reads_entries_lazily(small):
    store, entries, _, _ = small
    assert isinstance(store, Store)
    assert store.size == len(entries)
    assert store.entries([5, 0]) == [entries[5], entries[0]]
    row, entry = store.entry_by_id(entries[17].id)
    assert (row, entry) == (17, entries[17])
    assert store.entry_by_id("no-such-id") is None
    assert list(store.rerank_source().entries) == entries
    assert store.vendors == ["aliyun", "tencent"] and store.docs == ["t-2025", "t-2024", "a-2025"]
    assert store.manifest["dense_index"]["kind"] == "flat"


def test_groups_are_integers_with_members_newest_edition_first(small):
    store, entries, _, _ = small
    row = next(r for r, e in enumerate(entries) if e.doc == "t-2024")
    group = int(store.group_of(np.array([row]))[0])
    members = store.group_members(group)
    assert [entries[m].doc for m in members] == ["t-2025", "t-2024"]
    assert {entries[m].group for m in members} == {entries[row].group}


@pytest.mark.parametrize("filter", [NO_FILTER, Filter(vendor="aliyun"), Filter(doc="t-2024"),
                                    Filter(vendor="tencent", doc="t-2025"), Filter(vendor="aliyun", doc="t-2025")])
def test_dense_top_k_is_the_exact_top_k_of_the_allowed_entries(small, filter):
    store, entries, vectors, rows = small
    query = vectors[7] * 0.6 + vectors[40] * 0.4
    query /= np.linalg.norm(query)
    allowed = np.array([(filter.vendor in (None, e.vendor)) and (filter.doc in (None, e.doc)) for e in entries])
    best = _exact_best(vectors, rows, query, len(entries))
    best[~allowed] = -np.inf
    expected = [r for r in np.argsort(-best, kind="stable")[:10] if allowed[r]]
    found = store.dense(query, 10, filter)
    assert found.rows.tolist() == expected
    assert np.allclose(found.scores, np.maximum(best[expected], 0), atol=1e-5)
    assert np.allclose(store.dense_scores(query, found.rows), best[expected], atol=1e-5)


def test_bm25_and_exact_apply_the_filter_inside_the_store(small):
    store, entries, _, _ = small
    query = [(store.tokenizer.tokens("签名 问题"), 1.0)]
    every = store.bm25(query, 1000)
    only = store.bm25(query, 1000, Filter(vendor="aliyun"))
    assert len(only) and all(entries[r].vendor == "aliyun" for r in only.rows)
    assert set(only.rows) == {r for r in every.rows if entries[r].vendor == "aliyun"}
    assert np.allclose(store.bm25_scores(query, only.rows), only.scores)
    library = store.bm25_model.get_scores(query[0][0])  # bm25s's own scorer over the whole corpus
    assert np.allclose(every.scores, library[every.rows], rtol=1e-6)
    assert set(every.rows) == set(np.flatnonzero(library > 0))
    assert list(only.scores) == sorted(only.scores, reverse=True)
    # An identifier in the question weighs 3, one only in the answer 1.
    code = store.exact({"1000"}, 10)
    assert {entries[r].doc for r in code.rows} == {"a-2025"} and set(code.scores) == {3.0}
    answer_only = store.exact({"2000"}, 10)
    assert len(answer_only) == 1 and answer_only.scores[0] == 1.0
    assert not len(store.exact({"1000"}, 10, Filter(vendor="tencent")))
    assert not len(store.exact({"424242"}, 10))


def test_dense_statistics_come_from_the_allowed_sample(small):
    store, entries, vectors, rows = small
    query = vectors[3]
    best = np.maximum(_exact_best(vectors, rows, query, len(entries)), 0)
    aliyun = np.array([e.vendor == "aliyun" for e in entries])
    sample = store.dense_sample(query, Filter(vendor="aliyun"))  # the whole store: smaller than the sample
    assert sample.low == pytest.approx(best[aliyun].min(), abs=1e-5)
    assert sample.mean == pytest.approx(best[aliyun].mean(), abs=1e-5)
    assert store.offtopic(query) == pytest.approx(float((vectors[:3] @ query).max()), abs=1e-5)


def test_above_the_size_threshold_the_dense_index_is_an_inverted_file_and_recalls_the_exact_top_10(tmp_path):
    entries = _entries(400)  # 800 entries over the docs
    store, vectors, rows = _write(tmp_path, entries, approximate_above=500, seed=1)
    dense_index = store.manifest["dense_index"]
    assert dense_index["kind"] == "ivf-sq8" and dense_index["cells"] > 1
    assert dense_index["nprobe"] == ivf_nprobe(dense_index["cells"]) == min(dense_index["cells"], 32)
    ivf = faiss.read_index(str(tmp_path / IVF_FILE))
    assert type(ivf).__name__ == "IndexIVFScalarQuantizer" and ivf.sq.qtype == faiss.ScalarQuantizer.QT_8bit
    rng = np.random.default_rng(2)
    recalls = []
    for _ in range(30):
        query = vectors[rng.integers(len(vectors))] + rng.normal(scale=0.3, size=DIM).astype(np.float32)
        query /= np.linalg.norm(query)
        best = _exact_best(vectors, rows, query, len(entries))
        exact = set(np.argsort(-best, kind="stable")[:10].tolist())
        recalls.append(len(exact & set(store.dense(query, 10).rows.tolist())) / 10)
    assert np.mean(recalls) >= 0.98
    filtered = store.dense(vectors[0], 10, Filter(doc="a-2025"))
    assert len(filtered) == 10 and all(entries[r].doc == "a-2025" for r in filtered.rows)


def test_the_vector_file_reads_exactly_the_rows_asked(small, monkeypatch):
    store, _, vectors, _ = small
    file = VectorFile(store.path / VECTORS_FILE)
    assert (file.ntotal, file.d) == vectors.shape
    reads = []
    pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, size, offset: reads.append((size, offset)) or pread(fd, size, offset))
    positions = [9, 3, 4, 5, 77, 3]
    assert np.array_equal(file.reconstruct_batch(positions), vectors[positions])
    row_bytes, header = 4 * DIM, os.path.getsize(store.path / VECTORS_FILE) - vectors.nbytes
    # one read per run of consecutive rows (3-5, 9, 77), each exactly those rows' bytes
    assert sorted(reads, key=lambda r: r[1]) == [(3 * row_bytes, header + 3 * row_bytes), (row_bytes, header + 9 * row_bytes),
                                                 (row_bytes, header + 77 * row_bytes)]
    reads.clear()
    assert np.array_equal(file.reconstruct_n(10, 4), vectors[10:14]) and reads == [(4 * row_bytes, header + 10 * row_bytes)]
    with pytest.raises(IndexError):
        file.reconstruct_batch([len(vectors)])


def test_a_small_vector_file_is_read_once_when_opened(small, monkeypatch):
    """The real corpus's few MB of vectors: a search then reads its candidates' rows with no system call."""
    store, _, vectors, _ = small
    file = VectorFile(store.path / VECTORS_FILE, resident_bytes=vectors.nbytes)
    monkeypatch.setattr(os, "pread", lambda *args: pytest.fail("a resident vector file read the disk"))
    positions = [9, 3, 4, 5, 77, 3]
    assert np.array_equal(file.reconstruct_batch(positions), vectors[positions])
    assert np.array_equal(file.reconstruct_n(10, 4), vectors[10:14])
    assert file.reconstruct_batch([]).shape == (0, vectors.shape[1])
    with pytest.raises(IndexError):
        file.reconstruct_batch([len(vectors)])
    monkeypatch.undo()
    assert VectorFile(store.path / VECTORS_FILE, resident_bytes=vectors.nbytes - 1)._resident is None  # larger: by row


def test_a_scattered_batch_is_announced_to_the_kernel_before_it_is_read(small, monkeypatch):
    """From a cold page cache the disk then fetches the runs together rather than one seek after another."""
    store, _, vectors, _ = small
    file = VectorFile(store.path / VECTORS_FILE)
    events = []
    pread, fadvise = os.pread, os.posix_fadvise
    monkeypatch.setattr(os, "pread", lambda fd, size, offset: events.append(("read", offset)) or pread(fd, size, offset))
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, offset, size, advice: events.append(("announce", offset, size, advice))
                        or fadvise(fd, offset, size, advice))
    row_bytes, header = 4 * DIM, os.path.getsize(store.path / VECTORS_FILE) - vectors.nbytes
    scattered = np.arange(0, 2 * ANNOUNCED_RUNS, 2)[::-1]  # ANNOUNCED_RUNS runs of one row, asked out of order
    assert np.array_equal(file.reconstruct_batch(scattered), vectors[scattered])
    announced = [e for e in events if e[0] == "announce"]
    assert announced == [("announce", header + p * row_bytes, row_bytes, os.POSIX_FADV_WILLNEED) for p in sorted(scattered)]
    assert events[: len(announced)] == announced and len(events) == 2 * len(announced)  # all announced, then read
    events.clear()
    assert np.array_equal(file.reconstruct_batch([6, 4, 5]), vectors[[6, 4, 5]])
    assert [e[0] for e in events] == ["read"]  # one run is just read


def test_warming_asks_the_kernel_to_cache_every_file_but_the_vector_files_in_the_background(tmp_path, monkeypatch):
    """What `faq serve` does once its searcher is open: the first searches then find the inverted file, the
    BM25 postings and the entries in memory; the vector files stay read row by row."""
    store, _, _ = _write(tmp_path, _entries(60))
    (store.path / "rerank").mkdir()
    (store.path / "rerank" / "sentence_vectors.npy").write_bytes(b"0" * 100)
    (store.path / "rerank" / "rows.jsonl").write_bytes(b"{}\n" * (3 << 20))  # 9 MiB: two pieces of advice
    advised = []
    fadvise = os.posix_fadvise
    def record(fd, offset, size, advice):
        advised.append((Path(os.readlink(f"/proc/self/fd/{fd}")).relative_to(store.path).as_posix(), offset, size, advice))
        return fadvise(fd, offset, size, advice)
    monkeypatch.setattr(os, "posix_fadvise", record)
    assert store.preloading is None  # opening a store (a CLI search, an eval) reads nothing ahead
    store.warm()
    store.preloading.join(10)
    names = {name for name, *_ in advised}
    expected = {p.relative_to(store.path).as_posix() for p in store.path.rglob("*") if p.is_file()}
    assert names == expected - {VECTORS_FILE, "rerank/sentence_vectors.npy"}
    assert all(advice == os.POSIX_FADV_WILLNEED for *_, advice in advised)
    assert [(o, n) for name, o, n, _ in advised if name == "rerank/rows.jsonl"] == [(0, CHUNK), (CHUNK, CHUNK)]
    first = store.preloading
    store.warm()
    assert store.preloading is first  # once per store


def test_a_read_cut_short_by_the_system_is_continued(small, monkeypatch):
    """Linux returns at most 2 GiB per read (all 1.4M vectors of 100k entries are more): the rest is read on."""
    store, _, vectors, _ = small
    file = VectorFile(store.path / VECTORS_FILE)
    pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, size, offset: pread(fd, min(size, 1000), offset))
    assert np.array_equal(file.reconstruct_n(0, len(vectors)), vectors)


def test_a_truncated_vector_file_is_refused(tmp_path, small):
    store, _, _, _ = small
    data = (store.path / VECTORS_FILE).read_bytes()
    (tmp_path / VECTORS_FILE).write_bytes(data[:-7])
    with pytest.raises(VectorFileError):
        VectorFile(tmp_path / VECTORS_FILE)


def _assert_exact_top_10(store, vectors, rows, entries: int, seed: int, queries: int) -> list:
    """Queries near stored vectors: the store's top 10 rows and scores are the exact ones (ties by row)."""
    rng = np.random.default_rng(seed)
    searched = []
    for _ in range(queries):
        query = vectors[rng.integers(len(vectors))] + rng.normal(scale=0.2, size=DIM).astype(np.float32)
        query /= np.linalg.norm(query)
        best = _exact_best(vectors, rows, query, entries)
        found = store.dense(query, 10)
        assert found.rows.tolist() == np.lexsort((np.arange(len(best)), -best))[:10].tolist()
        assert np.allclose(found.scores, best[found.rows], atol=1e-6)
        searched.append((query, found))
    return searched


def test_the_inverted_file_re_scored_exactly_gives_the_exact_top_k(tmp_path):
    """Forced approximate on a small corpus: whatever the 8-bit codes propose, the order and the scores
    returned are the exact ones, and equal to the fill-in scores of the same rows."""
    entries = _entries(300)  # 600 entries
    store, vectors, rows = _write(tmp_path, entries, approximate_above=100, seed=3)
    assert store.manifest["dense_index"]["nprobe"] == store.manifest["dense_index"]["cells"]  # every cell: no miss
    for query, found in _assert_exact_top_10(store, vectors, rows, len(entries), seed=4, queries=20):
        assert np.array_equal(found.scores, store.dense_scores(query, found.rows))


def test_above_the_vector_threshold_the_inverted_file_is_product_quantized_and_re_scored_to_the_exact_top_k(
        tmp_path, monkeypatch):
    """Forced product quantization on a small corpus: the manifest names the kind and its parameters, the
    file holds those codes, and the rows and scores returned are the exact ones."""
    monkeypatch.setattr(embedded_build, "PQ_PROPOSED_MIN", 300)  # a third of this store's vectors
    entries = _entries(300)  # 500 entries, 1,000 vectors
    store, vectors, rows = _write(tmp_path, entries, approximate_above=100, seed=5, compressed_above=999)
    dense_index = store.manifest["dense_index"]
    assert dense_index["kind"] == "ivf-pq" and dense_index["compressed_above"] == 999
    assert dense_index["subquantizers"] == pq_subquantizers(DIM) and dense_index["bits"] == 8
    assert (dense_index["rescored"], dense_index["proposed_min"]) == (PQ_RESCORED, 300)
    assert dense_index["nprobe"] == dense_index["cells"] > 1
    ivf = faiss.read_index(str(tmp_path / IVF_FILE))
    assert type(ivf).__name__ == "IndexIVFPQ" and ivf.ntotal == len(vectors)
    assert (ivf.pq.M, ivf.pq.nbits, ivf.metric_type) == (dense_index["subquantizers"], 8, faiss.METRIC_INNER_PRODUCT)
    assert len(_assert_exact_top_10(store, vectors, rows, len(entries), seed=6, queries=10)) == 10


def test_up_to_the_vector_threshold_the_inverted_file_keeps_8_bit_codes(tmp_path):
    store, vectors, _ = _write(tmp_path, _entries(300), approximate_above=100, seed=5, compressed_above=1000)
    assert store.manifest["dense_index"]["kind"] == "ivf-sq8" and len(vectors) == 1000


def test_pq_sub_quantizers_divide_the_dimension():
    assert pq_subquantizers(384) == 64 and pq_subquantizers(32) == 32 and pq_subquantizers(100) == 50


def test_equal_scores_are_cut_by_lowest_row():
    rows = np.array([50, 7, 30, 2, 9, 41], dtype=np.int64)
    scores = np.array([1.0, 0.5, 1.0, 1.0, 2.0, 1.0], dtype=np.float32)
    assert _top(rows, scores, 3, positive=False).rows.tolist() == [9, 2, 30]
    assert _top(rows[::-1].copy(), scores[::-1].copy(), 3, positive=False).rows.tolist() == [9, 2, 30]


@pytest.mark.parametrize("change", [{"schema": 3}, {"dense_index": {"kind": "hnsw"}}], ids=["schema", "dense kind"])
def test_a_build_of_another_version_asks_for_a_rebuild(built, tmp_path, change):
    import shutil

    from assistant.index import current_build

    old = tmp_path / "old-build"
    shutil.copytree(current_build(built.index_dir), old)
    manifest = json.loads((old / "manifest.json").read_text(encoding="utf-8"))
    (old / "manifest.json").write_text(json.dumps({**manifest, **change}), encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="run `faq build`"):
        load_build(old, built)
