"""`faq search`, `faq build`, `faq eval`, `faq bench` as other tools and people call them."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from assistant.config import PROJECT_ROOT

ENTRY_FIELDS = {"id", "group", "vendor", "vendor_name", "product", "doc", "edition", "updated", "section",
                "question", "answer", "source", "flags", "placement"}


def faq(built, *args, stdin: str | None = None, **env):
    environment = {**os.environ, "FAQ_INDEX_DIR": str(built.index_dir), **env}
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args], input=stdin, capture_output=True, text=True,
        cwd=PROJECT_ROOT, env=environment, timeout=300,
    )


def test_search_json_is_one_line_with_the_contract_fields(built):
    done = faq(built, "search", "返回1014错误", "--json", "--top-k", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert set(result) >= {"query", "abstained", "hits"}
    assert result["abstained"] is False and len(result["hits"]) == 3
    hit = result["hits"][0]
    assert set(hit) >= ENTRY_FIELDS | {"score", "channels", "editions"}
    assert "1014" in hit["question"] and "exact" in hit["channels"]
    assert set(hit["editions"][0]) >= {"doc", "edition", "updated", "answer_changed"}
    assert set(hit["source"]) >= {"path", "line_start", "line_end"}


def test_batch_keeps_order_and_reports_bad_lines_in_place(built, tmp_path):
    queries = ["签名被驳回怎么办", "", "How do I get an invoice?", "今天天气怎么样"]
    batch = tmp_path / "queries.txt"
    batch.write_text("\n".join(queries) + "\n", encoding="utf-8")
    for source, stdin in ((str(batch), None), ("-", "\n".join(queries) + "\n")):
        done = faq(built, "search", "--batch", source, "--json", stdin=stdin)
        assert done.returncode == 0, done.stderr
        results = [json.loads(line) for line in done.stdout.splitlines()]
        assert [r["query"] for r in results] == queries
        assert "error" in results[1] and results[1]["hits"] == []
        assert results[2]["hits"][0]["question"] == "是否可以开发票？"
        assert results[3]["abstained"] is True


def test_readable_output_shows_provenance(built):
    done = faq(built, "search", "手机免打扰名单是什么")
    assert done.returncode == 0, done.stderr
    first = done.stdout.split("\n2. ")[0]
    assert "手机免打扰名单是什么" in first
    assert "2025 PDF edition" in first and "tencent/sms-faq-2025-pdf.txt:" in first
    assert "also in: Markdown edition (API 3.0, undated)" in first


@pytest.mark.parametrize(
    "args, message",
    [
        (["search", "   "], "empty"),
        (["search", "签名", "--top-k", "0"], "top-k"),
        (["search", "签名", "--top-k", "many"], "whole number"),
        (["search", "签名", "--vendor", "huawei"], "valid: aliyun, tencent"),
        (["search", "签名", "--edition", "2030"], "valid: latest, all"),
        (["search"], "--batch"),
    ],
)
def test_bad_search_input_exits_2_with_a_message(built, args, message):
    done = faq(built, *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_a_huge_query_is_searched_with_a_notice(built):
    done = faq(built, "search", "短信签名" * 2500, "--json")
    assert done.returncode == 0, done.stderr
    assert "most informative" in json.loads(done.stdout)["notices"][0]


def test_searching_without_an_index_says_how_to_build(built, tmp_path):
    done = faq(built, "search", "签名", FAQ_INDEX_DIR=str(tmp_path / "none"))
    assert done.returncode == 1
    assert "faq build" in done.stderr and "Traceback" not in done.stderr


def test_build_if_needed_skips_an_up_to_date_index(built):
    done = faq(built, "build", "--if-needed")
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout


def test_eval_reports_metrics_baselines_and_compares(built, tmp_path):
    queries = tmp_path / "queries.jsonl"
    lines = (PROJECT_ROOT / "corpus" / "eval" / "labelled.jsonl").read_text(encoding="utf-8").splitlines()
    heldout = [line for line in lines if '"split": "heldout"' in line and ".md" not in line]
    queries.write_text("\n".join(lines[:12] + heldout[:4]) + "\n", encoding="utf-8")
    report = tmp_path / "report"
    done = faq(built, "eval", "--queries", str(queries), "--report", str(report))
    assert done.returncode == 0, done.stderr
    for name in ("recall@1", "mrr@10", "ndcg@10", "BM25 alone", "dense alone", "by lang", "by kind", "by vendor",
                 "HELD-OUT", "TUNING", "without rerank", "near_handled"):
        assert name in done.stdout
    data = json.loads((report / "eval.json").read_text(encoding="utf-8"))
    assert len(data["configs"]) == 7 and len(data["queries"]) == 16
    assert data["configs"][data["final"]]["heldout"]["queries"] == 4
    assert (report / "eval.png").read_bytes()[:4] == b"\x89PNG"
    assert "Held-out split: final system and baselines" in (report / "eval.md").read_text(encoding="utf-8")
    old = data
    old["queries"][0]["rank"] = None  # pretend the first query used to miss
    (tmp_path / "old.json").write_text(json.dumps(old), encoding="utf-8")
    again = faq(built, "eval", "--queries", str(queries), "--compare", str(tmp_path / "old.json"))
    assert again.returncode == 0, again.stderr
    assert "better than" in again.stdout and lines[0].split('"')[3] in again.stdout


def test_bench_prints_search_beside_embedding(built):
    done = faq(built, "bench", "--quick")
    assert done.returncode == 0, done.stderr
    assert "query embedding only" in done.stdout and "p95 ratio search / embedding" in done.stdout
    assert "analysis + rerank" in done.stdout
    assert "one thread" in done.stdout and "load average (1, 5, 15 min)" in done.stdout


def test_readable_output_quotes_a_partial_match_under_its_notice(searcher, capsys):
    from assistant.cli import _print_result

    result = dataclasses.replace(searcher.search("签名申请被驳回怎么办"),
                                 partial="FAQ 只涉及“签名申请被驳回怎么办？”，没有涉及：退款。")
    _print_result(result, as_json=False)
    printed = capsys.readouterr().out
    first_answer_line = result.hits[0].entry.answer.splitlines()[0]
    assert printed.startswith("Only partly covered: FAQ 只涉及")
    assert "     │ " + first_answer_line in printed.split("\n2. ")[0]
