"""The feedback store: one row per answer, the latest vote, withdrawn votes, comments, the report, migration."""

from __future__ import annotations

import json
import sqlite3

import pytest

from assistant.feedback import FeedbackError, FeedbackStore


def test_one_row_per_answer_keeps_the_latest_vote_and_the_comment(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite3")
    answer = store.log_search("1014", False, ["e1", "e2", "e3"], "b1", "ui")
    row = store.record_vote(answer, "1014", "e1", 1, build_id="b1")
    assert store.record_vote(answer, "1014", "e1", -1, comment=" 旧版本 ", build_id="b1") == row
    store.record_vote(answer, "1014", "e1", 0)  # withdrawn: the comment stays with the answer
    rows = store.rows()
    assert len(rows) == 1 and rows[0]["vote"] == 0 and rows[0]["comment"] == "旧版本" and rows[0]["entry_id"] == "e1"
    assert store.report()["down_voted"] == []


def test_the_report_lists_down_voted_entries_with_queries_and_comments(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite3")
    for query, comment in (("1014", "少了第8步"), ("返回1014", None)):
        store.record_vote(store.log_search(query, False, ["e1"], "b", "ui"), query, "e1", -1, comment)
    store.record_vote(store.log_search("发票", False, ["e2"], "b", "ui"), "发票", "e2", 1)
    store.log_search("天气", True, [], "b", "ui")
    report = store.report()
    assert report["down_voted"] == [("e1", 2, ["1014", "返回1014"], ["少了第8步"])]
    assert report["abstained"] == [("天气", 1)]


@pytest.mark.parametrize("vote", [2, -2, True, "1", None])
def test_bad_votes_are_refused(tmp_path, vote):
    store = FeedbackStore(tmp_path / "f.sqlite3")
    with pytest.raises(FeedbackError):
        store.record_vote("a1", "q", "e1", vote)


def test_a_first_release_database_is_migrated(tmp_path):
    path = tmp_path / "f.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE feedback (id INTEGER PRIMARY KEY, created TEXT NOT NULL, query TEXT NOT NULL, "
                   "vote INTEGER NOT NULL, entry_ids TEXT NOT NULL, build_id TEXT, comment TEXT, surface TEXT NOT NULL)")
        db.execute("INSERT INTO feedback VALUES (1, '2026-01-01', 'q', -1, ?, 'b', 'bad', 'ui')",
                   (json.dumps(["e9", "e8"]),))
    store = FeedbackStore(path)
    rows = store.rows()
    assert len(rows) == 1 and rows[0]["entry_id"] == "e9" and rows[0]["vote"] == -1 and rows[0]["comment"] == "bad"
