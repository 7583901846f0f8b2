from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from assistant.config import PROJECT_ROOT
from assistant.ingest import ingest_corpus
from conftest import find

EXPECTED_COUNTS = {
    "tencent-sms-faq-2025-pdf": 112,
    "tencent-sms-faq-md-api3": 30,
    "tencent-sms-faq-2018-pdf": 41,
    "tencent-sms-faq-md-api2": 8,
    "aliyun-sms-delivery-faq": 48,
}


def test_entries_per_document(entries):
    counts = {doc: sum(1 for e in entries if e.doc == doc) for doc in EXPECTED_COUNTS}
    assert counts == EXPECTED_COUNTS


def test_every_2025_question_has_an_answer(entries):
    missing = [e.question for e in entries if e.doc == "tencent-sms-faq-2025-pdf" and not e.answer]
    assert missing == []


def test_corpus_files_are_the_seeds_byte_for_byte(manifest):
    seeds = PROJECT_ROOT.parent / "shared" / "seeds"
    if not seeds.is_dir():
        pytest.skip("shared/seeds is not beside this checkout")
    seed_bytes = {p.read_bytes() for p in [*seeds.glob("0*.txt"), *seeds.glob("extra/*.md")]}
    for doc in manifest.documents:
        for file in doc.files:
            assert file.path.read_bytes() in seed_bytes, file.rel_path


def test_provenance(entries):
    entry = find(entries, "tencent-sms-faq-2018-pdf", "短信签名是否有个数限制")
    assert entry.updated == "2018-09-19" and entry.section == "签名问题"
    assert (entry.source.path, entry.source.line_start, entry.source.line_end) == (
        "tencent/sms-faq-2018-pdf.txt", 227, 229)
    lines = (PROJECT_ROOT / "corpus" / entry.source.path).read_text(encoding="utf-8").splitlines()
    assert lines[entry.source.line_start - 1] == entry.question

    scrambled = find(entries, "tencent-sms-faq-2025-pdf", "短信支持使用不指定产品代金券吗")
    assert scrambled.updated == "2025-06-16" and scrambled.section == "费用相关问题"
    assert scrambled.source.spans == ((6, 6), (28, 28))

    undated = find(entries, "tencent-sms-faq-md-api3", "手机黑名单是什么")
    assert undated.updated is None and undated.section is None

    web = find(entries, "aliyun-sms-delivery-faq", "短信服务群发有什么限制")
    assert web.source.url == "https://help.aliyun.com/zh/sms/user-guide/message-delivery-faq"
    assert web.section == "短信使用限制相关" and web.updated is None


def _ids_in_fresh_process(hash_seed: str) -> list[str]:
    code = (
        "import json;from assistant.config import Settings;"
        "from assistant.ingest import ingest_corpus, load_corpus_manifest as m;"
        "print(json.dumps([[e.id, e.group] for e in ingest_corpus(m(Settings.from_env().manifest_path))]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(result.stdout)


def test_ids_are_stable_across_runs(entries):
    first, second = _ids_in_fresh_process("1"), _ids_in_fresh_process("12345")
    assert first == second == [[e.id, e.group] for e in entries]
    assert len({e.id for e in entries}) == len(entries)


def test_ingest_is_deterministic(manifest, entries):
    again = ingest_corpus(manifest)
    assert [e.to_json() for e in again] == [e.to_json() for e in entries]
