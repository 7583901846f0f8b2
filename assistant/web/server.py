"""One FastAPI app: the JSON API, the chat UI at /, the compact embed view at /embed; served by uvicorn,
one process or several under uvicorn's supervisor, which replaces a worker that dies."""

from __future__ import annotations

import json
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from assistant.config import Settings  # noqa: E402
from assistant.web.api import create_api  # noqa: E402
from assistant.web.gradio_guard import guard_gradio_mounts  # noqa: E402
from assistant.web.security import embed_origins  # noqa: E402
from assistant.web.service import Service, settle_heap  # noqa: E402
from assistant.web.source_view import add_source_view  # noqa: E402
from assistant.web.ui import CSS, build_ui  # noqa: E402
from assistant.web.workers import default_workers, embedder_threads  # noqa: E402

# How the supervisor tells its workers what to serve (worker processes import the app by name).
ALLOW_EMBED_ENV = "FAQ_ALLOW_EMBED"
ROOT_PATH_ENV = "FAQ_ROOT_PATH"


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
    settle_heap()
    return app


def app_from_env() -> FastAPI:
    """The app of one worker process, configured by the supervisor through the environment."""
    allow_embed = json.loads(os.environ.get(ALLOW_EMBED_ENV) or "[]")
    return create_app(Settings.from_env(), allow_embed, os.environ.get(ROOT_PATH_ENV, ""))


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860, allow_embed: list[str] | None = None,
          root_path: str = "", workers: int | None = None) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from assistant.web.listeners import worker_listener

    origins = embed_origins(allow_embed)  # EmbedOriginError before anything starts
    workers = workers or default_workers()
    listener = worker_listener(host, port) if workers > 1 else None  # PortInUse before anything starts
    print(f"FAQ assistant on http://{host}:{port}{root_path}/  (embed view: {root_path}/embed, API docs: /docs; "
          f"{workers} worker{'s' if workers > 1 else ''})", flush=True)
    if workers == 1:
        uvicorn.run(create_app(settings, origins, root_path), host=host, port=port, root_path=root_path,
                    log_level="warning")
        return
    os.environ.update({
        "FAQ_CORPUS_DIR": str(settings.corpus_dir), "FAQ_INDEX_DIR": str(settings.index_dir),
        "FAQ_DATA_DIR": str(settings.data_dir), "FAQ_CACHE_DIR": str(settings.cache_dir),
        "FAQ_HANDOVER_TEXT": settings.handover_text, "FAQ_HANDOVER_URL": settings.handover_url or "",
        "FAQ_DATABASE_URL": settings.database_url or "",
        ALLOW_EMBED_ENV: json.dumps(origins), ROOT_PATH_ENV: root_path,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS") or embedder_threads(workers),
    })
    config = uvicorn.Config("assistant.web.server:app_from_env", factory=True, workers=workers, host=host, port=port,
                            root_path=root_path, log_level="warning")
    # uvicorn's supervisor (which replaces a dead worker) with a listening socket per worker, not one shared.
    Multiprocess(config, sockets=[listener]).run()
