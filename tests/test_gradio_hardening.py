"""The Gradio side of the server: nothing to upload, monitor or proxy; only `chat` callable; validated; no 500."""

from __future__ import annotations

import httpx
import pytest


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server["url"], timeout=30) as client:
        yield client


@pytest.mark.parametrize("prefix", ["", "/embed"])
def test_uploads_are_refused_and_nothing_is_stored(http, server, prefix, tmp_path):
    response = http.post(f"{prefix}/gradio_api/upload", files={"files": ("a.txt", b"x" * 1_000_000)})
    assert response.status_code == 404 and response.json() == {"error": "not available on this server"}
    assert "/tmp" not in response.text and "content-security-policy" in response.headers


@pytest.mark.parametrize("path", ["/monitoring", "/monitoring/summary", "/embed/monitoring/summary",
                                  "/gradio_api/proxy=/etc/passwd%00.png", "/embed/gradio_api/proxy=/etc/passwd",
                                  "/gradio_api/run-history/buckets"])
def test_monitoring_and_the_proxy_are_not_exposed_and_never_500(http, path):
    response = http.get(path)
    assert response.status_code == 404 and response.json()["error"]
    assert "root:" not in response.text


@pytest.mark.parametrize("name", ["respond", "on_transcript_click", "follow_vendor", "lambda", "v2/respond"])
@pytest.mark.parametrize("prefix", ["", "/embed"])
def test_internal_handlers_cannot_be_called_as_api(http, name, prefix):
    response = http.post(f"{prefix}/gradio_api/call/{name}", json={"data": ["1014", {}, "", "latest", 3]})
    assert response.status_code == 404
    assert http.post(f"{prefix}/gradio_api/run/{name}", json={"data": ["1014"]}).status_code == 404


def test_only_chat_is_documented(http):
    info = http.get("/gradio_api/info").json()
    assert list(info["named_endpoints"]) == ["/chat"] and not info["unnamed_endpoints"]


def test_a_v2_call_with_the_wrong_body_is_a_4xx_json_error(http):
    response = http.post("/gradio_api/call/v2/chat", json={"data": ["x"]})
    assert response.status_code == 422 and "gradio_api/info" in response.json()["error"]
    assert "Traceback" not in response.text and "content-security-policy" in response.headers
    assert http.post("/gradio_api/call/v2/chat", json={"message": "1014"}).status_code == 200


def test_foreign_localhost_origins_get_no_cors_with_credentials(http, server):
    for method, path in (("GET", "/gradio_api/info"), ("GET", "/config"), ("OPTIONS", "/gradio_api/queue/join")):
        headers = {"Origin": "http://localhost:9", "Access-Control-Request-Method": "POST"}
        response = http.request(method, path, headers=headers)
        assert "access-control-allow-origin" not in response.headers, path
        assert "access-control-allow-credentials" not in response.headers, path


@pytest.fixture(scope="module")
def chat_client(server):
    from gradio_client import Client

    return Client(server["url"] + "/", verbose=False)


@pytest.mark.parametrize(
    ("args", "expected", "never"),
    [
        (("1014", "", "latest", "abc"), "top_k must be a whole number", "invalid literal"),
        (("1014", "", "latest", 0), "top_k must be a whole number", "Traceback"),
        (("1014", "<script>alert(1)</script>", "latest", 3), "unknown vendor; valid: aliyun, tencent", "<script>"),
        (("1014", "", "<img src=x>", 3), "unknown edition", "<img"),
        (("签名" * 6000, "", "latest", 3), "longer than 10000 characters", "签名签名"),
        (("   ", "", "latest", 3), "the message is empty", "Traceback"),
    ],
)
def test_the_chat_endpoint_validates_like_the_search_api(chat_client, args, expected, never):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as raised:
        chat_client.predict(*args, api_name="/chat")
    assert expected in str(raised.value) and never not in str(raised.value)


def test_the_chat_endpoint_explains_contradictory_filters(chat_client):
    reply = chat_client.predict("1014", "aliyun", "tencent-sms-faq-2025-pdf", 3, api_name="/chat")
    assert "Tencent Cloud's" in reply and "no entry can match both" in reply


def test_the_gradio_queue_answers_agents_concurrently(server):
    from gradio_client import Client

    from assistant.web.ui import CHAT_CONCURRENCY

    blocks = [route.app.app.get_blocks() for route in server["app"].router.routes if hasattr(route, "app")
              and hasattr(getattr(route.app, "app", None), "get_blocks")]
    assert len(blocks) == 2
    for ui in blocks:
        limits = {fn.name: fn.concurrency_limit for fn in ui.fns.values() if fn.fn is not None}
        assert limits["respond"] == limits["chat"] == CHAT_CONCURRENCY >= 8
    # And really: four chats in flight at once all complete.
    import concurrent.futures

    client = Client(server["url"] + "/", verbose=False)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda q: client.predict(q, "", "latest", 3, api_name="/chat"),
                                ["1014", "如何开发票", "签名被驳回", "What is the do-not-disturb list?"]))
    assert all(replies)


def test_view_source_lines_serves_only_corpus_lines_escaped(http, server):
    hit = http.get("/api/search", params={"q": "1014"}).json()["hits"][0]
    page = http.get(f"/source/{hit['id']}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f'id="L{hit["source"]["line_start"]}" class="hit"' in page.text and "<script" not in page.text
    assert http.get(f"/embed/source/{hit['id']}").text == page.text
    for bad in ("nope", "..%2F..%2Fetc%2Fpasswd", "%3Cscript%3E", "tencent-sms-faq-2025-pdf:..%2Fmanifest"):
        response = http.get(f"/source/{bad}")
        assert response.status_code == 404 and "<script>" not in response.text and "root:" not in response.text
