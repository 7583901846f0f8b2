"""The Gradio chat an agent keeps open all day: the quote first, copyable; context folded below.

The transcript lives in the browser: each answer sends only the question and the filters, and
the server returns only the new turn (HTML rendered by render.py), which chat.js appends.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402  (after the analytics switch)

from assistant.errors import AssistantError  # noqa: E402
from assistant.search import MAX_MESSAGE_CHARS  # noqa: E402
from assistant.web.chat_api import register_chat_api  # noqa: E402
from assistant.web.conversation import edition_choices  # noqa: E402
from assistant.web.answering import Answerer  # noqa: E402
from assistant.web.render import message_html  # noqa: E402
from assistant.web.service import Service  # noqa: E402

STATIC = Path(__file__).parent / "static"
CSS = (STATIC / "chat.css").read_text(encoding="utf-8")
CHAT_JS = (STATIC / "chat.js").read_text(encoding="utf-8")
EXAMPLES = [
    "签名申请被驳回怎么办？",
    "返回1014错误如何处理",
    "How many SMS signatures can I have?",
    "What is the do-not-disturb list?",
    "阿里云短信一直显示发送中",
]
CHAT_CONCURRENCY = 16  # agents answered at once per UI; searches are short and release the GIL in native code


def _empty_transcript() -> str:
    chips = "".join(f'<button type="button" class="faq-example">{html.escape(e)}</button>' for e in EXAMPLES)
    return (f'<div id="faq-transcript" aria-live="polite"><div class="faq-empty">Examples 示例（点击即提问）：'
            f'<div class="faq-examples">{chips}</div></div></div>')


def build_ui(service: Service, compact: bool = False) -> gr.Blocks:
    answerer = Answerer(service, source_base="../" if compact else "")
    entries = service.searcher.documents()  # one per edition: the menus need no more
    with gr.Blocks(title="SMS FAQ assistant · 短信常见问题助手", analytics_enabled=False) as ui:
        with gr.Column(elem_classes=["faq-app", "faq-compact"] if compact else ["faq-app"]):
            if not compact:
                gr.Markdown(
                    "## SMS FAQ assistant · 短信常见问题助手\n"
                    "Ask in Chinese or English: the best Tencent Cloud / Alibaba Cloud FAQ entry is quoted first, "
                    "ready to copy. 用中文或英文提问，最匹配的 FAQ 条目先显示，可直接复制。", elem_id="faq-intro"
                )
            transcript = gr.HTML(_empty_transcript(), elem_id="faq-chat", js_on_load=CHAT_JS, padding=False)
            with gr.Row(elem_id="faq-inputrow", equal_height=True):
                question = gr.Textbox(placeholder="Ask a question · 请输入问题", show_label=False, scale=5,
                                      elem_id="faq-question", max_length=MAX_MESSAGE_CHARS, lines=1, max_lines=4,
                                      autofocus=True)
                ask = gr.Button("Ask 提问", variant="primary", scale=0, elem_id="faq-ask", min_width=96)
            with gr.Accordion("Filters 筛选", open=False, elem_id="faq-filters"):
                with gr.Row():
                    vendor = gr.Dropdown(service.vendor_choices(), value="", label="Vendor 厂商", elem_id="faq-vendor")
                    edition = gr.Dropdown(edition_choices(entries, None), value="latest", label="Edition 版本",
                                          elem_id="faq-edition")
                    top_k = gr.Slider(1, 10, value=5, step=1, label="Results 结果数", elem_id="faq-topk")
                with gr.Row(equal_height=True):
                    filter_note = gr.Markdown("", elem_id="faq-filter-note")
                    clear = gr.Button("Clear chat 清空", size="sm", variant="secondary", scale=0, min_width=120,
                                      elem_id="faq-clear")
        pending = gr.Textbox(visible=False, elem_id="faq-pending")
        notes = gr.State({})  # per session: answer id → {query, entry_id, ...}; "previous" → last question

        def respond(text, session, vendor_value, edition_value, count):
            session = dict(session or {})
            text = (text or "").strip()
            if not text:
                return gr.update(), gr.update(), session
            try:
                with service.turn():  # agents' searches run their Python oldest first
                    turn = answerer.answer(text, session, vendor_value or None, edition_value or None, int(count))
            except AssistantError as exc:
                turn = message_html(text, html.escape(f"⚠️ {exc}"))
            return "", turn, session

        def on_transcript_click(session, count, event: gr.EventData):
            data = getattr(event, "_data", None) or {}
            session = dict(session or {})
            action, answer_id = data.get("action"), str(data.get("answer") or "")
            note = session.get("answers", {}).get(answer_id)
            if note is None:
                return gr.update(), session, gr.update()
            if action == "widen":
                with service.turn():
                    turn, why = answerer.widen(answer_id, session, int(count))
                return turn, session, why
            if action == "vote":
                try:
                    # the quote shows the status
                    answerer.vote(note, answer_id, data.get("vote"), data.get("comment"), data.get("order"))
                except AssistantError:
                    pass  # a vote no button of ours sends
            return gr.update(), session, gr.update()

        def follow_vendor(vendor_value, edition_value):
            choices = edition_choices(entries, vendor_value or None)
            if edition_value in {value for _, value in choices}:
                return gr.update(choices=choices), ""
            reason = answerer.reset_note(edition_value, vendor_value)
            return gr.update(choices=choices, value="latest"), reason

        show = "(html) => window.faqShow && window.faqShow(html)"
        inputs = [question, notes, vendor, edition, top_k]
        options = {"api_visibility": "private", "concurrency_limit": CHAT_CONCURRENCY}
        for event in (ask.click, question.submit):
            event(respond, inputs, [question, pending, notes], **options).then(None, [pending], None, js=show,
                                                                                 api_visibility="private")
        transcript.click(on_transcript_click, [notes, top_k], [pending, notes, filter_note], **options).then(
            None, [pending], None, js=show, api_visibility="private")
        vendor.change(follow_vendor, [vendor, edition], [edition, filter_note], api_visibility="private")
        clear.click(lambda: {}, None, notes, api_visibility="private").then(
            None, None, None, js="() => window.faqClear && window.faqClear()", api_visibility="private")
        register_chat_api(answerer)
    ui.queue(default_concurrency_limit=CHAT_CONCURRENCY)
    return ui
