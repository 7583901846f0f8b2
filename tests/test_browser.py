"""The chat UI in a real browser (Playwright driving Debian's chromium); screenshots in test-artifacts/."""

from __future__ import annotations

import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from assistant.config import PROJECT_ROOT
from browser import LAUNCH_ARGS, ensure_chromium

ARTIFACTS = PROJECT_ROOT / "test-artifacts"
TIMEOUT = 30_000


@pytest.fixture(scope="module")
def browser():
    executable = ensure_chromium()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 1000}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    yield page
    context.close()


def ask(page, question: str):
    box = page.locator("#faq-question textarea")
    box.fill(question)
    page.locator("#faq-ask").click()
    return page.locator("#faq-chat .message.bot, #faq-chat [data-testid='bot']")


def test_a_chinese_question_gets_the_quote_and_its_provenance(page, server):
    page.goto(server["url"] + "/", wait_until="load")
    ask(page, "签名申请被驳回了怎么办")
    chat = page.locator("#faq-chat")
    chat.get_by_text("签名申请被驳回怎么办？").first.wait_for()
    text = chat.inner_text()
    assert "2025 PDF edition" in text and "tencent/sms-faq-2025-pdf.txt" in text
    assert "其他版本" in text  # "also in", in the question's language
    page.screenshot(path=str(ARTIFACTS / "chat-chinese.png"), full_page=True)


def test_an_english_question_finds_the_chinese_entry(page, server):
    page.goto(server["url"] + "/", wait_until="load")
    ask(page, "How many SMS signatures can I have?")
    chat = page.locator("#faq-chat")
    chat.get_by_text("短信签名是否有个数限制？").first.wait_for()
    assert "also in" in chat.inner_text() and "sms-faq-2025-pdf.txt" in chat.inner_text()
    page.screenshot(path=str(ARTIFACTS / "chat-english.png"), full_page=True)


def test_the_vendor_filter_changes_the_answer(page, server):
    page.goto(server["url"] + "/", wait_until="load")
    page.locator("#faq-vendor input").click()
    page.get_by_role("option", name="Alibaba Cloud 阿里云").click()
    ask(page, "短信状态一直显示发送中")
    chat = page.locator("#faq-chat")
    chat.get_by_text("是发送失败了吗").first.wait_for()
    assert "阿里云 Alibaba Cloud" in chat.inner_text()
    page.screenshot(path=str(ARTIFACTS / "chat-vendor-filter.png"), full_page=True)


def test_a_thumbs_up_is_stored_in_sqlite(page, server):
    page.goto(server["url"] + "/", wait_until="load")
    ask(page, "返回1014错误如何处理")
    page.locator("#faq-chat").get_by_text("返回1014错误如何处理？").first.wait_for()
    page.locator("#faq-chat button[aria-label='Like']").first.click()
    database = server["settings"].data_dir / "feedback.sqlite3"
    for _ in range(100):
        with sqlite3.connect(database) as db:
            rows = db.execute("SELECT query, vote, entry_ids, build_id FROM feedback WHERE surface = 'ui'").fetchall()
        if rows:
            break
        page.wait_for_timeout(100)
    assert rows and rows[-1][0] == "返回1014错误如何处理" and rows[-1][1] == 1 and rows[-1][3]


class _Helpdesk(BaseHTTPRequestHandler):
    target = ""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        body = (f"<!doctype html><meta charset=utf-8><title>helpdesk</title>"
                f"<iframe id=faq src='{self.target}' width=400 height=600></iframe>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def helpdesk_page(port: int, target: str):
    handler = type("Helpdesk", (_Helpdesk,), {"target": target})
    httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.mark.parametrize("allowed", [True, False])
def test_the_embed_view_renders_only_inside_allowed_origins(page, server, allowed):
    # The allowed origin is http://localhost:<server port + 1>; 127.0.0.1 on another port is not allowed.
    port = server["port"] + 1 if allowed else server["port"] + 2
    host = "localhost" if allowed else "127.0.0.1"
    httpd = helpdesk_page(port, server["url"] + "/embed/")
    try:
        page.goto(f"http://{host}:{port}/", wait_until="load")
        frame = page.frame_locator("#faq")
        if allowed:
            frame.locator("#faq-question textarea").wait_for()
            assert frame.locator("#faq-chat").count() == 1
        else:
            page.wait_for_timeout(3000)
            child = page.frames[1] if len(page.frames) > 1 else None
            assert child is None or child.url in ("about:blank", "chrome-error://chromewebdata/") or \
                child.locator("#faq-question").count() == 0
        page.screenshot(path=str(ARTIFACTS / f"embed-{'allowed' if allowed else 'blocked'}.png"))
    finally:
        httpd.shutdown()
