"""The Gradio chat: quotes the best entry with its provenance, editions and related entries."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402  (after the analytics switch)

from assistant.errors import AssistantError  # noqa: E402
from assistant.web.render import chat_messages, language_of  # noqa: E402
from assistant.web.service import Service  # noqa: E402

EXAMPLES = [
    "签名申请被驳回怎么办？",
    "返回1014错误如何处理",
    "How many SMS signatures can I have?",
    "What is the do-not-disturb list?",
    "阿里云短信一直显示发送中",
]
CSS = """
.faq-compact .gradio-container { padding: 4px !important; }
footer { display: none !important; }
"""


def _vote(liked) -> int | None:
    if liked in (True, "Like", "like"):
        return 1
    if liked in (False, "Dislike", "dislike"):
        return -1
    return None


def build_ui(service: Service, compact: bool = False) -> gr.Blocks:
    with gr.Blocks(title="SMS FAQ assistant · 短信常见问题助手", analytics_enabled=False, fill_height=compact) as ui:
        if not compact:
            gr.Markdown(
                "## SMS FAQ assistant · 短信常见问题助手\n"
                "Ask in Chinese or English: the best Tencent Cloud / Alibaba Cloud FAQ entry is quoted with "
                "its source. 用中文或英文提问，引用最匹配的 FAQ 条目并注明出处。"
            )
        chatbot = gr.Chatbot(
            label="FAQ", buttons=["copy"], height=380 if compact else 520, elem_id="faq-chat",
            feedback_options=("Like", "Dislike"), sanitize_html=True, render_markdown=True,
        )
        meta = gr.State({})  # assistant message index → {"query", "entry_ids"}
        with gr.Row():
            question = gr.Textbox(placeholder="Ask a question · 请输入问题", show_label=False, scale=5,
                                  elem_id="faq-question", max_length=10_000)
            ask = gr.Button("Ask 提问", variant="primary", scale=1, elem_id="faq-ask")
        with gr.Accordion("Filters 筛选", open=not compact):
            with gr.Row():
                vendor = gr.Dropdown(service.vendor_choices(), value="", label="Vendor 厂商", elem_id="faq-vendor")
                edition = gr.Dropdown(service.edition_choices(), value="latest", label="Edition 版本",
                                      elem_id="faq-edition")
                top_k = gr.Slider(1, 10, value=5, step=1, label="Results 结果数", elem_id="faq-topk")
        clear = gr.Button("Clear 清空", size="sm", elem_id="faq-clear")
        gr.Examples(EXAMPLES, inputs=question, label="Examples 示例")

        def respond(text, history, notes, vendor_value, edition_value, count):
            history = list(history or [])
            notes = dict(notes or {})
            text = (text or "").strip()
            if not text:
                return "", history, notes
            history.append({"role": "user", "content": text})
            try:
                result = service.search(text, int(count), vendor_value or None, edition_value or None, surface="ui")
                messages = chat_messages(result, service.searcher, text)
                ids = [hit.entry.id for hit in result.hits]
            except AssistantError as exc:
                messages, ids = [f"⚠️ {exc}"], []
            for message in messages:
                notes[str(len(history))] = {"query": text, "entry_ids": ids}
                history.append({"role": "assistant", "content": message})
            return "", history, notes

        def record_vote(notes, data: gr.LikeData):
            index = data.index if isinstance(data.index, int) else data.index[0]
            note = (notes or {}).get(str(index))
            vote = _vote(data.liked)
            if note is None or vote is None:
                return
            service.feedback.add(note["query"], vote, note["entry_ids"], service.build_id, surface="ui")
            gr.Info("Thanks · 感谢反馈" if language_of(note["query"]) == "zh" else "Thanks for the feedback")

        inputs = [question, chatbot, meta, vendor, edition, top_k]
        ask.click(respond, inputs, [question, chatbot, meta], api_visibility="private")
        question.submit(respond, inputs, [question, chatbot, meta], api_visibility="private")
        chatbot.like(record_vote, [meta], None)
        clear.click(lambda: ("", [], {}), None, [question, chatbot, meta], api_visibility="private")

        def chat(message: str, vendor: str = "", edition: str = "latest", top_k: int = 5) -> str:
            """One question in, the assistant's reply (Markdown) out."""
            try:
                result = service.search(message, int(top_k), vendor or None, edition or None, surface="ui")
            except AssistantError as exc:
                return f"⚠️ {exc}"
            return "\n\n---\n\n".join(chat_messages(result, service.searcher, message))

        gr.api(chat, api_name="chat")
    return ui
