"""The chat as an API endpoint (gradio_client: api_name="/chat"), validated like /api/search."""

from __future__ import annotations

import logging

import gradio as gr

from assistant.errors import AssistantError
from assistant.web.answering import Answerer

log = logging.getLogger(__name__)


def register_chat_api(answerer: Answerer) -> None:
    """Adds the `chat` endpoint to the Blocks being built (call inside its `with` block)."""

    def chat(message: str, vendor: str = "", edition: str = "latest", top_k: int = 5) -> str:
        """One question in; the quoted answer (plain text) with its source line, then related questions, out."""
        try:
            with answerer.service.turn():  # agents' searches run their Python oldest first
                return answerer.reply(message, vendor, edition, top_k)
        except AssistantError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception:  # never a raw exception text or traceback to a client
            log.exception("chat endpoint failed")
            raise gr.Error("the assistant could not answer this request", print_exception=False) from None

    gr.api(chat, api_name="chat", concurrency_limit=16)
