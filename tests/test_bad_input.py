"""Bad corpora: a clear error naming the file, and never a partial corpus."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.config import PROJECT_ROOT
from assistant.errors import CorpusError, DocumentError, ManifestError
from assistant.ingest import ingest_corpus, load_corpus_manifest
from helpers import make_corpus

def load(manifest: Path):
    return ingest_corpus(load_corpus_manifest(manifest))


def test_a_good_small_corpus_loads(tmp_path):
    entries = load(make_corpus(tmp_path))
    assert len(entries) == 38


def test_empty_file(tmp_path):
    with pytest.raises(DocumentError, match=r"b\.txt: is empty"):
        load(make_corpus(tmp_path, b_bytes=b"  \n\n"))


def test_not_utf8(tmp_path):
    with pytest.raises(DocumentError, match=r"b\.txt: is not UTF-8 text \(invalid byte at offset 4\)"):
        load(make_corpus(tmp_path, b_bytes="### 问题？\n".encode("gbk")))


def test_binary_file(tmp_path):
    with pytest.raises(DocumentError, match=r"b\.txt: is a binary file"):
        load(make_corpus(tmp_path, b_bytes=b"### Q?\nA.\n\x00\x00\x01"))


def test_unknown_format(tmp_path):
    with pytest.raises(ManifestError, match=r"doc-a has unknown format 'docx'; valid: markdown, pdf-text, web-page"):
        load(make_corpus(tmp_path, format_a="docx"))


def test_missing_file(tmp_path):
    with pytest.raises(ManifestError, match=r"doc-b names a missing file: .*gone\.txt"):
        load(make_corpus(tmp_path, path_b="gone.txt"))


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="corpus manifest not found"):
        load(tmp_path / "manifest.toml")


def test_file_without_entries(tmp_path):
    with pytest.raises(CorpusError, match=r"b\.txt: no Markdown headings found"):
        load(make_corpus(tmp_path, b_bytes="just a line of prose\n".encode()))


def test_cli_prints_nothing_when_one_document_fails(tmp_path):
    make_corpus(tmp_path, b_bytes=b"\xff\xfe broken")
    result = subprocess.run(
        [sys.executable, "-m", "assistant", "entries", "--json"],
        capture_output=True, text=True, env={"FAQ_CORPUS_DIR": str(tmp_path), "PATH": ""},
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "b.txt: is not UTF-8 text" in result.stderr
    assert "Traceback" not in result.stderr


def test_question_without_answer_is_flagged_not_filled(tmp_path):
    text = "### 有答案的问题？\n这是答案。\n\n### 没有答案的问题？\n\n### 最后一个问题？\n最后的答案。\n"
    entries = load(make_corpus(tmp_path, b_bytes=text.encode("utf-8")))
    by_question = {e.question: e for e in entries if e.doc == "doc-b"}
    empty = by_question["没有答案的问题？"]
    assert empty.answer == "" and empty.flags == ("answer_missing",)
    assert by_question["最后一个问题？"].answer == "最后的答案。"
    assert by_question["有答案的问题？"].flags == ()
