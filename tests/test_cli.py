from __future__ import annotations

import json
import subprocess
import sys

REQUIRED = {"id", "group", "vendor", "vendor_name", "product", "doc", "edition", "updated",
            "section", "question", "answer", "source"}


def run(*args):
    return subprocess.run([sys.executable, "-m", "assistant", *args], capture_output=True, text=True)


def test_entries_json_contract():
    result = run("entries", "--json")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 308
    for row in rows:
        assert REQUIRED <= row.keys()
        assert {"path", "line_start", "line_end", "url"} <= row["source"].keys()
        assert row["vendor"] in {"tencent", "aliyun"}
    assert {row["doc"] for row in rows} == {
        "tencent-sms-faq-2025-pdf", "tencent-sms-faq-md-api3", "tencent-sms-faq-2018-pdf",
        "tencent-sms-faq-md-api2", "aliyun-sms-delivery-faq",
        "tencent-markdown-faq-pages-zh", "tencent-markdown-faq-pages-en-international-site"}


def test_entries_filters():
    rows = [json.loads(line) for line in run("entries", "--json", "--vendor", "aliyun").stdout.splitlines()]
    assert len(rows) == 48 and {r["vendor_name"] for r in rows} == {"阿里云 Alibaba Cloud"}
    rows = [json.loads(line) for line in run("entries", "--json", "--doc", "tencent-sms-faq-md-api2").stdout.splitlines()]
    assert [r["question"] for r in rows][:2] == ["用户没有收到短信", "调用接口耗时比较长"]


def test_readable_listing_shows_provenance():
    out = run("entries", "--doc", "tencent-sms-faq-2018-pdf").stdout
    assert "Q: 短信签名是否有个数限制？" in out
    assert "2018 PDF edition · 签名问题 · 2018-09-19 · tencent/sms-faq-2018-pdf.txt:227-229" in out
    assert "also in: 2025 PDF edition (answer differs)" in out


def test_unknown_filters_are_clear_errors():
    result = run("entries", "--vendor", "acme")
    assert result.returncode == 1 and "unknown vendor 'acme'; valid: tencent, aliyun" in result.stderr
    result = run("entries", "--doc", "nope")
    assert result.returncode == 1 and "unknown document 'nope'" in result.stderr
    result = run("entries", "--bogus")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_python_dash_m_and_corpus_summary():
    out = run("corpus").stdout
    assert "308 entries in" in out and "tencent-sms-faq-2025-pdf" in out
