"""`faq add`: refused input changes nothing; added editions keep every existing group id."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.config import PROJECT_ROOT
from assistant.errors import InputError
from assistant.ingest import ingest_corpus, load_corpus_manifest
from assistant.ingest.add import AddRequest, add_edition

EXTRA = PROJECT_ROOT / "corpus" / "tencent" / "tencent-markdown-faq-pages-zh"
EXTRA_EN = PROJECT_ROOT / "corpus" / "tencent" / "tencent-markdown-faq-pages-en-international-site"
BEFORE = json.loads((PROJECT_ROOT / "tests" / "data" / "groups-before-pages.json").read_text(encoding="utf-8"))
PAGES = ("tencent-markdown-faq-pages-zh", "tencent-markdown-faq-pages-en-international-site")


@pytest.fixture()
def corpus(tmp_path) -> Path:
    """A copy of the bundled corpus as it was before the extra pages (groups.json kept)."""
    target = tmp_path / "corpus"
    shutil.copytree(PROJECT_ROOT / "corpus", target, ignore=shutil.ignore_patterns("tencent-markdown-faq-pages-*"))
    manifest = target / "manifest.toml"
    text = manifest.read_text(encoding="utf-8")
    text = text[: text.index('\n[[editions]]\nid = "tencent-markdown-faq-pages-zh"')] + "\n"
    for edition in PAGES:
        text = text.replace(f'  "{edition}",\n', "")
    manifest.write_text(text, encoding="utf-8")
    return target


def _snapshot(corpus: Path) -> dict[str, bytes]:
    return {str(p.relative_to(corpus)): p.read_bytes() for p in sorted(corpus.rglob("*")) if p.is_file()}


def _groups(corpus: Path) -> dict[str, str]:
    return {e.id: e.group for e in ingest_corpus(load_corpus_manifest(corpus / "manifest.toml"))}


def test_the_copy_holds_the_165_groups_as_they_were(corpus):
    assert _groups(corpus) == BEFORE
    assert len(set(BEFORE.values())) == 165


def test_labelled_queries_name_existing_groups(entries):
    from assistant.labels import load_queries

    groups = {e.group for e in entries}
    queries = load_queries(PROJECT_ROOT / "corpus/eval/labelled.jsonl", entries)
    named = {g for q in queries for g in q.groups}
    assert named and named <= groups and all(q.usable for q in queries)


def test_add_keeps_every_group_and_records_the_new_ones(corpus):
    page = EXTRA / "tencent-sms-template-faq-zh.md"
    report = add_edition(corpus, AddRequest([page], "腾讯", "Template FAQ page (zh)"))
    assert report.edition_id == "tencent-template-faq-page-zh" and report.questions == 5
    assert (corpus / "tencent/tencent-template-faq-page-zh/tencent-sms-template-faq-zh.md").read_bytes() == page.read_bytes()
    after = _groups(corpus)
    assert {k: after[k] for k in BEFORE} == BEFORE
    linked = {entry.question: others[0].group for entry, others in report.linked}
    assert linked["模版名称怎么填写？"] == BEFORE["tencent-sms-faq-2025-pdf:" + _id_of(corpus, "模板名称怎么填写？")]
    recorded = json.loads((corpus / "groups.json").read_text(encoding="utf-8"))["groups"]
    assert {e: g for e, g in after.items() if e.startswith("tencent-template-faq-page-zh:")}.items() <= recorded.items()
    assert "# Every key is documented in README.md" in (corpus / "manifest.toml").read_text(encoding="utf-8")


def _id_of(corpus: Path, question: str) -> str:
    entries = ingest_corpus(load_corpus_manifest(corpus / "manifest.toml"))
    return next(e.id for e in entries if e.doc == "tencent-sms-faq-2025-pdf" and e.question == question).split(":")[1]


def test_removing_and_reordering_editions_renames_nothing(corpus):
    add_edition(corpus, AddRequest([EXTRA_EN / "tencent-sms-other-issues-intl-en.md"], "tencent", "Other issues (en)",
                                   language="en"))
    full = _groups(corpus)
    manifest = corpus / "manifest.toml"
    text = manifest.read_text(encoding="utf-8")
    reordered = text.replace('  "tencent-sms-faq-2025-pdf",\n  "tencent-sms-faq-md-api3",\n',
                             '  "tencent-sms-faq-md-api3",\n  "tencent-sms-faq-2025-pdf",\n')
    manifest.write_text(reordered, encoding="utf-8")
    assert _groups(corpus) == full
    start = text.index('[[editions]]\nid = "tencent-sms-faq-md-api2"')
    end = text.index("[[editions]]", start + 10)
    without = text[:start] + text[end:]
    without = without.replace('  "tencent-sms-faq-md-api2",\n', "").replace(', "tencent-sms-faq-md-api2"]', "]")
    manifest.write_text(without, encoding="utf-8")
    remaining = _groups(corpus)
    assert remaining == {k: v for k, v in full.items() if not k.startswith("tencent-sms-faq-md-api2:")}


@pytest.mark.parametrize("content,options,message", [
    (b"", {}, r"empty\.md: is empty"),
    (b"\n  \n", {}, r"empty\.md: is empty"),
    (b"plain prose, no heading\n", {}, r"empty\.md: the markdown parser cannot read it: no Markdown headings"),
    (b"plain prose, no heading\n", {"format": "pdf-text"}, r"empty\.md: the pdf-text parser cannot read it"),
    ("## 标题一\n\n## 标题二\n".encode(), {}, r"empty\.md: no questions with an answer: 2 headings"),
    (b"URL: https://example.com/faq\nno question here\n", {"format": "web-page"}, r"empty\.md: the web-page parser"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", {}, r"empty\.md: is a binary file"),
    ("### 问题？\n答案。\n".encode("gbk"), {}, r"empty\.md: is not UTF-8 text"),
    (b"### Q?\nA.\n", {"language": "fr"}, r"--language must be one of zh, en, got 'fr'"),
    (b"### Q?\nA.\n", {"date": "2025-13-01"}, r"--date '2025-13-01' is not a date"),
    (b"### Q?\nA.\n", {"date": "yesterday"}, r"--date 'yesterday' is not a date"),
    (b"### Q?\nA.\n", {"label": "2025 PDF edition"}, r"--edition '2025 PDF edition': an edition with this label already exists"),
    (b"### Q?\nA.\n", {"vendor": "huawei"}, r"unknown vendor 'huawei'; valid: tencent, aliyun"),
    (b"### Q?\nA.\n", {"format": "docx"}, r"--format must be one of auto, markdown, pdf-text, web-page"),
    (b"### Q?\nA.\n", {"link_base": "cloud.tencent.com"}, r"--link-base 'cloud.tencent.com' is not an http"),
])
def test_bad_input_is_refused_and_nothing_changes(corpus, tmp_path, content, options, message):
    path = tmp_path / "empty.md"
    path.write_bytes(content)
    before = _snapshot(corpus)
    request = AddRequest([path], options.pop("vendor", "tencent"), options.pop("label", "New pages"), **options)
    with pytest.raises(InputError, match=message):
        add_edition(corpus, request)
    assert _snapshot(corpus) == before


def test_one_bad_file_among_several_is_named_and_nothing_changes(corpus, tmp_path):
    bad = tmp_path / "broken.md"
    bad.write_bytes("### 问题？\n答案。\n".encode("utf-16"))
    before = _snapshot(corpus)
    with pytest.raises(InputError, match=r"broken\.md: is a binary file"):
        add_edition(corpus, AddRequest([EXTRA / "tencent-sms-template-faq-zh.md", bad], "tencent", "Two pages"))
    assert _snapshot(corpus) == before


def test_a_file_of_unknown_shape_is_refused(corpus, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("plain prose, no heading\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"notes\.txt: cannot tell the format .* give --format"):
        add_edition(corpus, AddRequest([path], "tencent", "Notes"))


def test_a_file_already_in_the_corpus_is_refused(corpus):
    before = _snapshot(corpus)
    with pytest.raises(InputError, match=r"already in the corpus as tencent/sms-faq-markdown-api2\.txt"):
        add_edition(corpus, AddRequest([corpus / "tencent" / "sms-faq-markdown-api2.txt"], "tencent", "Copy"))
    assert _snapshot(corpus) == before


def test_cli_add_prints_a_summary_and_bad_input_exits_2(corpus, tmp_path):
    env = {**os.environ, "FAQ_CORPUS_DIR": str(corpus)}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "assistant", "add", *args], capture_output=True, text=True,
                              env=env, cwd=PROJECT_ROOT)

    bad = run(str(EXTRA / "tencent-sms-usage-faq-zh.md"), "--vendor", "tencent", "--edition", "X", "--date", "2025-02-30")
    assert bad.returncode == 2 and "--date '2025-02-30' is not a date" in bad.stderr and "Traceback" not in bad.stderr
    good = run(str(EXTRA / "tencent-sms-usage-faq-zh.md"), "--vendor", "qcloud", "--edition", "Usage page (zh)",
               "--date", "2019-05-01")
    assert good.returncode == 0, good.stderr
    assert "6 questions" in good.stdout and "- 如何创建和查看应用（sdkappid）" in good.stdout
    assert "linked to the same question in other editions" in good.stdout
    order = load_corpus_manifest(corpus / "manifest.toml").vendors["tencent"].editions
    assert order.index("tencent-usage-page-zh") == order.index("tencent-sms-faq-2018-pdf") - 1  # by its date


def test_heading_without_an_answer_is_a_warning(corpus, tmp_path):
    page = tmp_path / "page.md"
    page.write_text("### 有答案的问题？\n答案。\n\n### 没有答案的问题？\n", encoding="utf-8")
    report = add_edition(corpus, AddRequest([page], "tencent", "Page with a gap"))
    assert report.files[0].warnings == ["heading without an answer (line 4): 没有答案的问题？"]


def _without_page(tmp_path, page: Path) -> Path:
    """A copy of the bundled corpus without one of its extra pages (file, manifest line, recorded groups)."""
    target = tmp_path / "corpus"
    shutil.copytree(PROJECT_ROOT / "corpus", target)
    rel_path = str(page.relative_to(PROJECT_ROOT / "corpus"))
    manifest = target / "manifest.toml"
    lines = manifest.read_text(encoding="utf-8").splitlines(keepends=True)
    manifest.write_text("".join(line for line in lines if f'"{rel_path}"' not in line), encoding="utf-8")
    (target / rel_path).unlink()
    groups = json.loads((target / "groups.json").read_text(encoding="utf-8"))
    page_ids = {e.id for e in ingest_corpus(load_corpus_manifest(PROJECT_ROOT / "corpus" / "manifest.toml"))
                if e.source.path == rel_path}
    groups["groups"] = {k: v for k, v in groups["groups"].items() if k not in page_ids}
    (target / "groups.json").write_text(json.dumps(groups, ensure_ascii=False), encoding="utf-8")
    return target


@pytest.mark.parametrize("page,language", [
    (EXTRA_EN / "tencent-sms-business-dev-en.md", "en"),  # its English neighbours must not outvote its Chinese ones
    (EXTRA / "tencent-sms-content-rules-faq-zh.md", "zh"),
])
def test_a_page_added_on_its_own_renames_nothing_and_links_its_questions(tmp_path, page, language):
    """How a vendor's next page arrives: alone, after the others, as an edition of its own."""
    from assistant.link_eval import evaluate_links, read_gold

    corpus = _without_page(tmp_path, page)
    before = _groups(corpus)
    add_edition(corpus, AddRequest([page], "tencent", "One more page", language=language,
                                   link_base="https://cloud.tencent.com/document/product/382/"))
    after = _groups(corpus)
    assert {k: after[k] for k in before} == before
    report = evaluate_links(ingest_corpus(load_corpus_manifest(corpus / "manifest.toml")),
                            PROJECT_ROOT / "tests" / "data" / "links.tsv")
    assert report.wrong == []
    rows = [r for r in read_gold(PROJECT_ROOT / "tests" / "data" / "links.tsv") if r.file == page.name and r.link != "-"]
    assert rows and not [m for m in report.missed if m.startswith(page.name)]
