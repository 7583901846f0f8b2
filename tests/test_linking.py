"""Linking editions across languages, precisely; the asker's language picks the member shown."""

from __future__ import annotations

import json
import shutil

import pytest

from assistant.config import PROJECT_ROOT
from assistant.editions import answer_changed, answer_diff, pick_member, query_language
from assistant.entry import FaqEntry, Source
from assistant.ingest import ingest_corpus, load_corpus_manifest
from assistant.ingest.manifest import Manifest, Vendor
from assistant.link_eval import evaluate_links
from assistant.linking import link_editions
from conftest import find

PAGES_ZH = "tencent-markdown-faq-pages-zh"
PAGES_EN = "tencent-markdown-faq-pages-en-international-site"
PAIRS = PROJECT_ROOT / "tests" / "data" / "links.tsv"


def test_linking_precision_and_recall_on_the_pair_table(tmp_path):
    """The pages' entries linked afresh (their recorded groups dropped), measured on the hand-made table."""
    corpus = tmp_path / "corpus"
    shutil.copytree(PROJECT_ROOT / "corpus", corpus)
    groups = json.loads((corpus / "groups.json").read_text(encoding="utf-8"))
    groups["groups"] = {k: v for k, v in groups["groups"].items() if not k.startswith((PAGES_ZH, PAGES_EN))}
    (corpus / "groups.json").write_text(json.dumps(groups, ensure_ascii=False), encoding="utf-8")
    entries = ingest_corpus(load_corpus_manifest(corpus / "manifest.toml"))
    report = evaluate_links(entries, PAIRS)
    assert report.rows == 69 and report.expected == 62
    assert report.wrong == []
    assert report.recall >= 0.95, report.missed


def test_the_recorded_groups_are_what_linking_gives(entries):
    report = evaluate_links(entries, PAIRS)
    assert report.wrong == [] and report.recall >= 0.95


@pytest.mark.parametrize("english,chinese_doc,chinese", [
    ("What can I do if a 1014 error is returned?", "tencent-sms-faq-2025-pdf", "返回1014错误如何处理？"),
    ("What can I do if I cannot receive SMS messages?", "tencent-sms-faq-md-api2", "用户没有收到短信"),
    ("What is a phone number blacklist?", "tencent-sms-faq-2025-pdf", "手机免打扰名单是什么？"),
    ("Frequency Limit of Sending Voice Messages", "tencent-sms-faq-2018-pdf", "语音频率限制策略是什么？"),
    ("Frequency Limit of Sending SMS Messages", PAGES_ZH, "什么是频率限制？"),
])
def test_translations_are_one_group(entries, english, chinese_doc, chinese):
    assert find(entries, PAGES_EN, english).group == find(entries, chinese_doc, chinese).group


def test_the_decisive_word_keeps_questions_apart(entries):
    signature_rules = find(entries, PAGES_ZH, "短信签名规范")
    template_count = find(entries, "tencent-sms-faq-2025-pdf", "短信模板是否有个数限制")
    signature_count = find(entries, "tencent-sms-faq-2025-pdf", "短信签名是否有个数限制")
    assert len({signature_rules.group, template_count.group, signature_count.group}) == 3
    personal = find(entries, PAGES_ZH, "个人可以发送营销短信吗")
    assert personal.group == find(entries, "tencent-sms-faq-2025-pdf", "个人可以发送营销短信吗").group
    assert personal.group != find(entries, "tencent-sms-faq-2025-pdf", "发送营销短信需要什么条件").group


def _entry(doc: str, question: str, answer: str, language: str = "zh") -> FaqEntry:
    return FaqEntry(id=f"{doc}:{question}", vendor="v", vendor_name="V", product="P", doc=doc, edition=doc,
                    updated=None, section=None, question=question, answer=answer,
                    source=Source("x", 1, 1), language=language)


def _manifest(tmp_path, editions: list[str]) -> Manifest:
    """A one-vendor manifest with the bundled corpus's contrasts (they are data, not code)."""
    contrasts = load_corpus_manifest(PROJECT_ROOT / "corpus" / "manifest.toml").contrasts
    return Manifest(tmp_path / "manifest.toml", {"v": Vendor("v", "V", (), tuple(editions))}, (), contrasts)


@pytest.mark.parametrize("old,new", [
    ("短信模板是否有个数限制？", "短信签名是否有个数限制？"),
    ("个人用户能申请短信签名吗？", "企业用户能申请短信签名吗？"),
    ("国内短信如何计费？", "国际短信如何计费？"),
    ("How many templates can I create?", "How many signatures can I create?"),
    ("发送营销短信需要什么条件？", "发送通知短信需要什么条件？"),
    ("个人用户能申请短信签名吗？", "企事业单位能申请短信签名吗？"),
    ("Can I send marketing SMS messages to overseas users?", "Can I send verification code SMS messages to overseas users?"),
])
def test_contrasts_veto_even_identical_answers(tmp_path, old, new):
    answer = "上限为200个，可在控制台查看和申请。如需更多请联系腾讯云短信小助手。"
    first, second = _entry("new", new, answer), _entry("old", old, answer)
    link_editions([first, second], _manifest(tmp_path, ["new", "old"]))
    assert first.group != second.group


def test_a_reworded_question_with_its_answer_is_linked(tmp_path):
    newer = _entry("new", "短信签名是否有个数限制？", "短信签名个数上限为200个。")
    older = _entry("old", "短信签名有个数限制吗", "短信签名个数上限为50个。")
    link_editions([newer, older], _manifest(tmp_path, ["new", "old"]))
    assert newer.group == older.group and newer.editions[1]["answer_changed"]


def test_query_language():
    assert query_language("How do I add a signature?") == "en"
    assert query_language("签名怎么申请") == "zh"
    assert query_language("SMS 签名") == "zh"
    assert query_language("1014") is None and query_language("FailedOperation.SignatureIncorrectOrUnapproved") is None


def test_an_english_asker_gets_the_english_edition_and_a_note_on_the_newer_chinese_one():
    newest = _entry("2025", "短信签名是否有个数限制？", "短信签名个数上限为200个。")
    english = _entry("en", "Is there a limit on signatures?", "You can apply for at most 50 signatures.", "en")
    pick = pick_member([newest, english], "en")
    assert pick.entry is english
    assert "newer edition in Chinese" in pick.note and "says something different" in pick.note
    same = pick_member([newest, _entry("en", "Is there a limit?", "At most 200 signatures.", "en")], "en")
    assert "says something different" not in same.note
    assert pick_member([newest, english], "zh") == pick_member([newest, english], "zh").__class__(newest)


def test_a_chinese_asker_is_told_about_a_newer_english_edition():
    english = _entry("en", "What is error 1014?", "Error 1014 means the template was not approved.", "en")
    chinese = _entry("zh", "1014错误详解", "1016错误：模板未审核通过。")
    pick = pick_member([english, chinese], "zh")
    assert pick.entry is chinese and "newer edition in English" in pick.note


def test_a_group_in_one_language_shows_its_newest_member_without_a_note():
    newer, older = _entry("a", "问题？", "新答案。"), _entry("b", "问题？", "旧答案。")
    assert pick_member([newer, older], "en").entry is newer and pick_member([newer, older], "en").note is None


def test_translations_are_never_diffed_line_by_line(entries):
    english = find(entries, PAGES_EN, "What can I do if a 1014 error is returned?")
    chinese = find(entries, "tencent-sms-faq-2025-pdf", "返回1014错误如何处理？")
    assert answer_diff(chinese, english).startswith("translation:")
    assert not answer_changed(chinese, english)
    marks = {e["doc"]: e["translation"] for e in chinese.editions}
    assert marks[PAGES_EN] is True and marks["tencent-sms-faq-md-api3"] is False


def test_english_questions_get_the_english_answer(searcher):
    result = searcher.search("What can I do if a 1014 error is returned?")
    assert result.hits[0].entry.doc == PAGES_EN
    assert result.hits[0].edition_note and "Chinese" in result.hits[0].edition_note
    chinese = searcher.search("返回1014错误如何处理")
    assert chinese.hits[0].entry.doc == "tencent-sms-faq-2025-pdf" and chinese.hits[0].edition_note is None


def test_a_question_asked_twice_in_one_edition_gets_two_groups(tmp_path):
    first, second = _entry("new", "问题？", "答案一。"), _entry("new", "问题？", "答案二。")
    second.id = "new:问题？2"
    link_editions([first, second], _manifest(tmp_path, ["new"]))
    assert first.group and second.group and first.group != second.group
