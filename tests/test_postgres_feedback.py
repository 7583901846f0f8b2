"""Feedback and the query log in PostgreSQL: shared by replicas, same behaviour as the SQLite store."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from assistant.feedback import FeedbackError, FeedbackStore, open_feedback
from assistant.postgres.feedback import PostgresFeedbackStore


def test_votes_and_the_report_match_the_sqlite_store(postgres_url, tmp_path):
    stores = [PostgresFeedbackStore(postgres_url), FeedbackStore(tmp_path / "f.sqlite3")]
    for store in stores:
        for query, comment in (("1014", "少了第8步"), ("返回1014", None)):
            answer = store.log_search(query, False, ["e1"], "b", "ui")
            store.record_vote(answer, query, "e1", 1)
            store.record_vote(answer, query, "e1", -1, comment)
        withdrawn = store.log_search("发票", False, ["e2"], "b", "ui")
        store.record_vote(withdrawn, "发票", "e2", -1, " 旧版本 ")
        store.record_vote(withdrawn, "发票", "e2", 0)  # the comment stays with the answer
        store.log_search("天气", True, [], "b", "ui")
        store.log_search(" 天气", True, [], "b", "api")
    postgres, sqlite = (store.report() for store in stores)
    assert postgres == sqlite
    assert postgres["down_voted"] == [("e1", 2, ["1014", "返回1014"], ["少了第8步"])]
    rows = stores[0].rows()
    assert [(r["entry_id"], r["vote"], r["comment"]) for r in rows] == [("e1", -1, "少了第8步"), ("e1", -1, None),
                                                                        ("e2", 0, "旧版本")]


def test_two_replicas_share_one_log(postgres_url):
    """Two stores (two `faq serve` processes) writing at once: every search and vote lands, once."""
    replicas = [PostgresFeedbackStore(postgres_url) for _ in range(2)]

    def agent(store, n):
        for i in range(25):
            store.record_vote(store.log_search(f"q{n}-{i}", True, [], "b", "ui"), f"q{n}-{i}", "e1", -1)

    threads = [threading.Thread(target=agent, args=(store, n)) for n, store in enumerate(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = replicas[1].report(limit=100)
    assert len(report["abstained"]) == 50
    assert report["down_voted"][0][:2] == ("e1", 50)


@pytest.mark.parametrize("vote", [2, -2, True, "1", None])
def test_bad_votes_are_refused(postgres_url, vote):
    with pytest.raises(FeedbackError):
        PostgresFeedbackStore(postgres_url).record_vote("a1", "q", "e1", vote)


def test_the_database_url_chooses_the_store(postgres_url, settings, tmp_path):
    local = dataclasses.replace(settings, data_dir=tmp_path / "local", database_url=None)
    assert isinstance(open_feedback(local), FeedbackStore)
    shared = dataclasses.replace(settings, data_dir=tmp_path / "shared", database_url=postgres_url)
    assert isinstance(open_feedback(shared), PostgresFeedbackStore)
    assert not (tmp_path / "shared").exists()
