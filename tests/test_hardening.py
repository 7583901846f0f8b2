"""Every response safe and well-formed: hostile requests against the real server, the guard middleware,
and the validation of --allow-embed."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx
import pytest
from fastapi import FastAPI
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.testclient import TestClient

from assistant.config import PROJECT_ROOT
from assistant.web.security import EmbedOriginError, GuardMiddleware, embed_origin, frame_ancestors

SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "referrer-policy")
SURROGATE_BODY = b'{"query": "x", "vote": 1, "entry_ids": ["\\ud800<script>"]}'


def hostile_requests() -> list[tuple[str, str, dict]]:
    """(method, path, httpx keyword arguments): malformed, oversized, mistyped, misrouted, misheaded."""
    cases: list[tuple[str, str, dict]] = []
    bodies = [
        b"", b"{", b"{not json", b"[]", b"null", b"1e999999", b'"q"', b"\xff\xfe\x00", b'{"q": "\\ud800"}',
        b'{"q": "' + b"a" * 20_000 + b'"}', b'{"q": {"$gt": ""}}', b'{"q": ["a", "b"]}', b'{"q": 1}',
        b'{"q": "x", "top_k": "5; DROP TABLE"}', b'{"q": "x", "top_k": 1e308}', b'{"q": "x", "top_k": true}',
        b'{"q": "x", "vendor": ["tencent"]}', b'{"q": "x", "edition": {"a": 1}}', b'{"q": "\\u0000\\u0000"}',
        b'{"q": "x", "top_k": -1}', b'{"q": "x", "top_k": 99999999999999999999999}', b'{"q": "x"' + b" " * 5000,
        b'{"q": "' + "ﷺ".encode() * 3000 + b'"}', b'{"q": "x", "vendor": "' + b"v" * 5000 + b'"}',
        b'{"q":"x","q":"y"}', b'{"__proto__": {"q": 1}}', b"\x00" * 100, b"q=x&top_k=3",
    ]
    content_types = ["application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                     "application/json; charset=latin-1", "", "application/json\r\nX-Injected: 1"[:16]]
    for body in bodies:
        for content_type in content_types:
            cases.append(("POST", "/api/search", {"content": body, "headers": {"content-type": content_type}}))
    feedback_bodies = [
        SURROGATE_BODY, b'{"query": "x", "vote": "1"}', b'{"query": "x", "vote": 2}', b'{"query": "x", "vote": 1.5}',
        b'{"query": "x", "vote": 1, "entry_ids": "abc"}', b'{"query": "x", "vote": 1, "entry_ids": [1, 2]}',
        b'{"query": "x", "vote": 1, "entry_ids": [' + b'"a",' * 200 + b'"a"]}', b'{"query": "", "vote": 1}',
        b'{"query": "x", "vote": 1, "comment": "' + b"c" * 5000 + b'"}', b'{"query": "\\udfff", "vote": -1}',
        b'{"query": "x", "vote": 1, "entry_ids": ["' + b"e" * 1000 + b'"]}', b"{", b"[]",
    ]
    cases += [("POST", "/api/feedback", {"content": b, "headers": {"content-type": t}})
              for b in feedback_bodies for t in content_types[:3]]
    queries = ["", " ", "\x00", "%00", "ﷺ" * 50, "\ud800", "<script>alert(1)</script>", "' OR 1=1 --", "../../etc/passwd",
               "{{7*7}}", "${jndi:ldap://x}", "a" * 10_001, "中" * 3000, "\u202e\u2066", "%ff%fe", "\r\nSet-Cookie: a=b"]
    for q in queries:
        cases.append(("GET", "/api/search", {"params": {"q": q}}))
        cases.append(("GET", "/api/search", {"params": {"q": "签名", "top_k": q or "x"}}))
        cases.append(("GET", "/api/search", {"params": {"q": "签名", "vendor": q, "edition": q}}))
        for field in ("q", "vendor", "edition", "top_k"):
            cases.append(("POST", "/api/search", {"json": {"q": "签名", field: q}}))
        cases.append(("POST", "/api/feedback", {"json": {"query": q, "vote": 1, "entry_ids": [q], "comment": q}}))
    raw_paths = [
        "/api/search?q=%ff%fe", "/api/search?q=%ed%a0%80", "/api/search?q=x&top_k=%00", "/api/search?q=a&q=b",
        "/api/entries/..%2f..%2fetc%2fpasswd", "/api/entries/%2e%2e/%2e%2e/etc/passwd", "/api/entries/%00",
        "/api/entries/%ed%a0%80", "/api/entries/" + "x" * 5000, "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
        "/static/../../../etc/passwd", "/api/../../etc/passwd", "/healthz/../../etc/passwd", "/healthz?x=%00",
        "//etc/passwd", "/api//search?q=x", "/api/search/../search?q=x", "/.env", "/.git/config", "/index/current",
        "/docs/../../etc/passwd", "/openapi.json/..%2f..%2f", "/api/entries/<script>", "/readyz?%ff",
        "/gradio_api/file=/etc/passwd", "/gradio_api/file=../../../etc/passwd", "/file=/etc/passwd",
        "/embed/../../etc/passwd", "/embed/file=/etc/passwd", "/assets/..%2f..%2f..%2fetc%2fpasswd",
    ]
    cases += [(method, path, {}) for path in raw_paths for method in ("GET", "POST", "HEAD")]
    for method in ("PUT", "DELETE", "PATCH", "TRACE", "OPTIONS", "PROPFIND", "CONNECT", "HEAD", "FOO"):
        for path in ("/api/search", "/api/feedback", "/api/entries/x", "/healthz", "/readyz", "/docs"):
            cases.append((method, path, {}))
    odd_headers = [
        {"host": "evil.example"}, {"host": ""}, {"origin": "https://evil.example"}, {"origin": "null"},
        {"x-forwarded-for": "1.2.3.4, <script>"}, {"x-forwarded-host": "evil.example"}, {"cookie": "a=" + "b" * 4000},
        {"accept": "text/html"}, {"accept": "*/*;q=0.0"}, {"accept-encoding": "gzip, br, zstd, x-evil"},
        {"range": "bytes=0-1,2-3,4-5"}, {"if-none-match": "*"}, {"content-length": "abc"},
        {"user-agent": "\u00ff" * 100}, {"authorization": "Basic " + "A" * 3000}, {"x-http-method-override": "DELETE"},
        {"referer": "javascript:alert(1)"}, {"content-type": "application/json", "content-encoding": "gzip"},
    ]
    for headers in odd_headers:
        for path in ("/api/search?q=签名", "/healthz", "/api/entries/x"):
            cases.append(("GET", path, {"headers": headers}))
    cases.append(("POST", "/api/search", {"content": b"x" * (2 << 20), "headers": {"content-type": "application/json"}}))
    cases.append(("POST", "/api/feedback", {"content": b"[" + b"1," * 600_000 + b"1]",
                                            "headers": {"content-type": "application/json"}}))
    return cases


def _send(client: httpx.Client, method: str, path: str, options: dict) -> httpx.Response:
    options = dict(options)
    headers = options.pop("headers", {})
    params = options.pop("params", None)
    request = client.build_request(method, path, params=params, **options)
    for name, value in headers.items():
        request.headers[name] = value
    return client.send(request)


def test_hostile_requests_get_no_5xx_and_always_the_security_headers(server):
    cases = hostile_requests()
    assert len(cases) >= 500
    failures, sent = [], 0
    with httpx.Client(base_url=server["url"], timeout=30) as client:
        for method, path, options in cases:
            try:
                response = _send(client, method, path, options)
            except (httpx.HTTPError, UnicodeEncodeError, ValueError) as exc:
                if isinstance(exc, httpx.RemoteProtocolError):
                    failures.append((method, path[:60], "connection dropped"))
                continue  # the client itself refused to send it (e.g. a header it cannot encode)
            sent += 1
            missing = [h for h in SECURITY_HEADERS if h not in response.headers]
            if response.status_code >= 500 or missing:
                failures.append((method, path[:60], response.status_code, missing))
            sent_path = response.request.url.path  # after the client's own normalisation of ../
            if response.status_code >= 400 and sent_path.startswith(("/api/", "/healthz", "/readyz")) and method != "HEAD":
                if not response.headers.get("content-type", "").startswith("application/json") \
                        or "error" not in response.json() or "Traceback" in response.text:
                    failures.append((method, path[:60], response.status_code, response.text[:100]))
        assert client.get("/healthz").status_code == 200  # still alive
    assert not failures, failures[:20]
    assert sent >= 500, sent


def test_a_lone_surrogate_in_feedback_ids_is_a_clean_json_4xx_that_does_not_echo_it(server):
    response = httpx.post(server["url"] + "/api/feedback", content=SURROGATE_BODY,
                          headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"].startswith("application/json")
    assert "<script>" not in response.text and "ud800" not in response.text
    assert all(h in response.headers for h in SECURITY_HEADERS)


def test_api_gives_no_foreign_origin_credentials(server):
    for path in ("/api/search?q=签名", "/healthz"):
        response = httpx.get(server["url"] + path, headers={"origin": "https://evil.example"})
        assert response.headers.get("access-control-allow-origin") in (None, server["url"])
        assert "access-control-allow-credentials" not in response.headers
    preflight = httpx.options(server["url"] + "/api/search", headers={
        "origin": "https://evil.example", "access-control-request-method": "POST"})
    assert "evil.example" not in preflight.headers.get("access-control-allow-origin", "")


def guarded_app() -> TestClient:
    """An app whose route, middleware and mounted sub-app each raise, behind the guard."""
    app = FastAPI()
    inner = FastAPI()

    @inner.get("/boom")
    def inner_boom():
        raise RuntimeError("secret detail from a mounted app")

    @app.get("/route")
    def route_boom():
        raise KeyError("secret detail from a route")

    @app.get("/ok")
    def ok():
        return {"ok": True}

    class Exploding(BaseHTTPMiddleware):
        async def dispatch(self, request, call_next):
            if request.url.path == "/middleware":
                raise ValueError("secret detail from a middleware")
            return await call_next(request)

    app.add_middleware(Exploding)
    app.mount("/mounted", inner)
    app.add_middleware(GuardMiddleware, policy=frame_ancestors(["https://help.example.com"]), max_body=1000)
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("path", ["/route", "/middleware", "/mounted/boom"])
def test_the_guard_answers_any_exception_with_a_json_500_and_the_headers(path):
    response = guarded_app().get(path)
    assert response.status_code == 500 and response.json() == {"error": "internal error"}
    assert "secret" not in response.text
    assert response.headers["content-security-policy"] == "frame-ancestors 'self' https://help.example.com"
    assert all(h in response.headers for h in SECURITY_HEADERS)


def test_the_guard_bounds_bodies_with_and_without_a_content_length():
    client = guarded_app()
    assert client.post("/ok", content=b"x" * 1001).status_code == 413
    chunked = client.post("/ok", content=iter([b"x" * 600, b"x" * 600]))
    assert chunked.status_code in (405, 413)  # /ok takes no body: the route may answer before reading it
    assert client.get("/ok").json() == {"ok": True}


@pytest.mark.parametrize("value, expected", [
    ("https://help.example.com", "https://help.example.com"),
    ("HTTP://LOCALHOST:8080", "http://localhost:8080"),
    ("https://*.example.com", "https://*.example.com"),
    ("https://help.example.com/", "https://help.example.com"),
    ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
    ("http://[::1]:8080", "http://[::1]:8080"),
])
def test_valid_origins_are_accepted(value, expected):
    assert embed_origin(value) == expected


@pytest.mark.parametrize("value", [
    "", " ", "*", "'none'", "'self'", "javascript:alert(1)", "data:text/html,x", "https://h.example.com; script-src 'none'",
    "https://h.example.com\r\nX-Injected: 1", "https://h.example.com\n", "https://h.example.com/path", "ftp://h.example.com",
    "h.example.com", "https://", "https://*", "https://*.com", "https://h.example.com:99999", "https://h.example.com:0",
    "https://user@h.example.com", "https://h.example.com?x=1", "https://h.example.com#x", "https://h ex.com",
    "blob:https://h.example.com", "https://-bad-.example.com",
])
def test_anything_but_an_origin_is_refused_with_a_clear_message(value):
    with pytest.raises(EmbedOriginError, match="--allow-embed"):
        embed_origin(value)


@pytest.mark.parametrize("value", ["", "https://h.example.com; script-src 'none'", "*", "https://h.example.com\r\nX: 1"])
def test_faq_serve_refuses_a_bad_origin_with_exit_code_2(value, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = subprocess.run([sys.executable, "-m", "assistant", "serve", "--port", str(port), "--allow-embed", value],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "--allow-embed" in done.stderr and "Traceback" not in done.stderr
    assert "https://help.example.com" in done.stderr  # the message shows what is accepted

