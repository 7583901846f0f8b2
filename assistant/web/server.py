"""One FastAPI app: the JSON API, the chat UI at /, the compact embed view at /embed."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from assistant.config import Settings  # noqa: E402
from assistant.web.api import create_api  # noqa: E402
from assistant.web.gradio_guard import guard_gradio_mounts  # noqa: E402
from assistant.web.service import Service  # noqa: E402
from assistant.web.source_view import add_source_view  # noqa: E402
from assistant.web.ui import CSS, build_ui  # noqa: E402


def create_app(settings: Settings, allow_embed: list[str] | None = None, root_path: str = "") -> FastAPI:
    service = Service.open(settings, allow_embed)
    app = create_api(service)
    app.state.service = service
    add_source_view(app, service)  # before the Gradio mounts, which take every path
    theme_options = {"css": CSS}
    gr.mount_gradio_app(app, build_ui(service, compact=True), path="/embed", root_path=f"{root_path}/embed",
                        footer_links=[], **theme_options)
    gr.mount_gradio_app(app, build_ui(service), path="", root_path=root_path, footer_links=[], **theme_options)
    guard_gradio_mounts(app)
    return app


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860, allow_embed: list[str] | None = None,
          root_path: str = "") -> None:
    import uvicorn

    app = create_app(settings, allow_embed, root_path)
    print(f"FAQ assistant on http://{host}:{port}{root_path}/  (embed view: {root_path}/embed, API docs: /docs)",
          flush=True)
    uvicorn.run(app, host=host, port=port, root_path=root_path, log_level="warning")
