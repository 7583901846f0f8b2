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
