"""The search pipeline over a store: the factory, a self-contained build, serving without the ingest
parsers, and a small `faq bench --scale` run (figures present, no timing asserted)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from assistant.bench_scale import ScaleError, replicate, run_scale_bench
from assistant.config import PROJECT_ROOT
from assistant.index import current_build
from assistant.search import Searcher
from assistant.stores import Filter, open_store
from assistant.rerank import KEYS_FROM
from assistant.stores.embedded import EmbeddedStore
from assistant.stores.embedded_build import KEYS_AT_SCALE, keys_kept

QUERIES = ["返回1014错误怎么办", "签名申请被拒绝了怎么办", "Can I get an invoice?", "阿里云短信怎么收费"]


def test_open_store_opens_the_published_build_of_an_index_directory(built, searcher):
    store = open_store(str(built.index_dir), built)
    assert isinstance(store, EmbeddedStore)
    assert store.build_id == searcher.index.build_id == current_build(built.index_dir).name
    assert store.manifest["dense_index"]["kind"] == "flat"  # a few hundred entries: exact search
    assert set(store.manifest["vendor_names"]) == set(store.vendors)


def test_a_build_is_searched_without_its_corpus(built, searcher, tmp_path):
    copy = tmp_path / "build"
    shutil.copytree(current_build(built.index_dir), copy)
    elsewhere = Searcher(open_store(str(copy), built), searcher.embedder, searcher.glossary,
                         reranker=searcher.reranker)
    for query in QUERIES:
        assert elsewhere.search(query).to_json() == searcher.search(query).to_json()


def test_vendor_and_edition_filters_are_applied_by_the_store(searcher):
    store = searcher.store
    doc = store.docs[-1]
    for query in QUERIES:
        dense = store.dense(searcher.embedder.embed_queries([query])[0], 20, Filter(doc=doc))
        assert {e.doc for e in store.entries(dense.rows)} == {doc}
        result = searcher.search(query, top_k=10, vendor="aliyun")
        assert result.hits and {h.entry.vendor for h in result.hits} == {"aliyun"}


def test_serving_does_not_import_the_ingest_parsers():
    code = ("import sys, assistant.web.server, assistant.search, assistant.stores.embedded; "
            "print([m for m in sys.modules if m.startswith('assistant.ingest') or m == 'assistant.linking'])")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, check=True)
    assert found.stdout.strip() == "[]"


def test_bench_scale_replicates_the_corpus_and_reports_every_figure(built, capsys):
    real = open_store(str(built.index_dir), built).size
    figures = run_scale_bench(built, 2 * real + 50, as_json=True, queries=4, rounds=1, approximate_above=real)
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line == figures
    assert figures["n"] == 2 * real + 50 and figures["store"] == "embedded" and figures["dense_index"] == "ivf-sq8"
    assert 0.0 <= figures["recall_at_10"] <= 1.0
    for key in ("search_p50_ms", "search_p95_ms", "embed_p95_ms", "startup_s", "peak_rss_mb"):
        assert figures[key] > 0
    with pytest.raises(ScaleError, match="at least"):
        run_scale_bench(built, real - 1, as_json=True)


def test_above_the_exact_size_an_entry_is_searched_by_its_first_search_keys(built, tmp_path):
    real = open_store(str(built.index_dir), built)
    per_entry = np.bincount(np.asarray(real.vector_rows), minlength=real.size)
    assert per_entry.max() > KEYS_FROM + KEYS_AT_SCALE  # the real build: every key a vector
    assert keys_kept(real.size) is None and keys_kept(real.size, approximate_above=real.size - 1) == KEYS_AT_SCALE
    n = 2 * real.size + 50
    manifest = replicate(built, n, tmp_path, log=lambda *_: None, approximate_above=real.size)
    synthetic = np.bincount(np.load(tmp_path / "vector_rows.npy"), minlength=n)
    assert manifest["dense_index"]["kind"] == "ivf-sq8" and manifest["counts"]["vectors"] == synthetic.sum()
    assert synthetic.max() == KEYS_FROM + KEYS_AT_SCALE
    assert (synthetic == np.minimum(per_entry, KEYS_FROM + KEYS_AT_SCALE)[np.arange(n) % real.size]).all()
