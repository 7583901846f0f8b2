"""Small real corpora and built indexes for tests."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from assistant.config import PROJECT_ROOT, Settings

MANIFEST = """
schema = 2
[vendors.tencent]
name = "腾讯云 Tencent Cloud"
aliases = ["腾讯云", "tencent"]
editions = ["doc-a", "doc-b"]

[[editions]]
id = "doc-a"
vendor = "tencent"
label = "A edition"
language = "zh"
product = "短信 SMS"
title = "A"
format = "{format_a}"
files = [{{ path = "a.txt" }}]

[[editions]]
id = "doc-b"
vendor = "tencent"
label = "B edition"
language = "zh"
product = "短信 SMS"
title = "B"
format = "markdown"
files = [{{ path = "{path_b}" }}]
"""


def make_corpus(tmp_path: Path, *, format_a="markdown", path_b="b.txt", b_bytes: bytes | None = None) -> Path:
    source = PROJECT_ROOT / "corpus" / "tencent"
    shutil.copy(source / "sms-faq-markdown-api2.txt", tmp_path / "a.txt")
    if b_bytes is None:
        shutil.copy(source / "sms-faq-markdown-api3.txt", tmp_path / "b.txt")
    else:
        (tmp_path / "b.txt").write_bytes(b_bytes)
    manifest = tmp_path / "manifest.toml"
    manifest.write_text(MANIFEST.format(format_a=format_a, path_b=path_b), encoding="utf-8")
    return manifest



def small_settings(tmp_path: Path, cache_dir: Path) -> Settings:
    """Settings over a two-document corpus (38 entries) with its own index and data directories."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    make_corpus(corpus)
    shutil.copy(PROJECT_ROOT / "corpus" / "glossary.tsv", corpus / "glossary.tsv")
    shutil.copy(PROJECT_ROOT / "corpus" / "offtopic.txt", corpus / "offtopic.txt")
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", data_dir=tmp_path / "data", cache_dir=cache_dir)


def with_index_dir(settings: Settings, index_dir: Path) -> Settings:
    return dataclasses.replace(settings, index_dir=index_dir)


def new_database(server_url: str) -> str:
    """The URL of a fresh, empty database on a running PostgreSQL server."""
    import uuid

    import psycopg

    from assistant.postgres.connection import url_with

    name = f"faq_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url_with(server_url, dbname=name)
