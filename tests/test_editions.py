from __future__ import annotations

import pytest

from assistant.editions import answer_diff
from conftest import find

NEWEST_FIRST = [
    "tencent-sms-faq-2025-pdf",
    "tencent-sms-faq-md-api3",
    "tencent-sms-faq-2018-pdf",
    "tencent-sms-faq-md-api2",
]

PAGES_ZH = "tencent-markdown-faq-pages-zh"
PAGES_EN = "tencent-markdown-faq-pages-en-international-site"

# (doc, question of one member) → the docs the group must hold, newest first.
GROUPS = [
    ("tencent-sms-faq-md-api2", "1014错误详解", [*NEWEST_FIRST, PAGES_EN]),
    ("tencent-sms-faq-md-api2", "1004错误详解", [*NEWEST_FIRST, PAGES_EN]),
    ("tencent-sms-faq-md-api2", "60008错误详解", [*NEWEST_FIRST, PAGES_EN]),
    ("tencent-sms-faq-md-api2", "手机黑名单", [*NEWEST_FIRST, PAGES_EN]),
    ("tencent-sms-faq-md-api2", "用户没有收到短信", [*NEWEST_FIRST, PAGES_EN]),
    ("tencent-sms-faq-md-api2", "很久才收到短信", [*NEWEST_FIRST, PAGES_EN]),
    ("tencent-sms-faq-2018-pdf", "返回 1001 (sig 校验失败)", [*NEWEST_FIRST[:3], PAGES_ZH, PAGES_EN]),
    ("tencent-sms-faq-2018-pdf", "短信签名是否有个数限制", [NEWEST_FIRST[0], NEWEST_FIRST[2]]),
    ("tencent-sms-faq-2018-pdf", "模板名称怎么填写", [NEWEST_FIRST[0], NEWEST_FIRST[2], PAGES_ZH]),
    ("tencent-sms-faq-2018-pdf", "短信支持使用通用代金券吗", [NEWEST_FIRST[0], NEWEST_FIRST[2]]),
    ("tencent-sms-faq-2018-pdf", "如何创建和查看应用 (sdkappid)", [NEWEST_FIRST[0], NEWEST_FIRST[2], PAGES_ZH]),
    ("tencent-sms-faq-2018-pdf", "其他常见错误码详解", [NEWEST_FIRST[2], NEWEST_FIRST[3], PAGES_EN]),
    (PAGES_EN, "Description", [NEWEST_FIRST[2], NEWEST_FIRST[3], PAGES_EN]),
    ("tencent-sms-faq-md-api3", "SignatureIncorrectOrUnapproved", NEWEST_FIRST[:2]),
    ("tencent-sms-faq-2018-pdf", "对方收到信息是否可以回复", NEWEST_FIRST[:3]),
    ("aliyun-sms-delivery-faq", "短信服务群发有什么限制", ["aliyun-sms-delivery-faq"]),
]


@pytest.mark.parametrize("doc,question,docs", GROUPS)
def test_edition_groups(entries, doc, question, docs):
    entry = find(entries, doc, question)
    members = [e for e in entries if e.group == entry.group]
    assert [e.doc for e in members] == docs
    assert [edition["doc"] for edition in entry.editions] == docs


def test_renamed_term_links_editions(entries):
    newest = find(entries, "tencent-sms-faq-2025-pdf", "手机免打扰名单是什么")
    oldest = find(entries, "tencent-sms-faq-md-api2", "手机黑名单")
    assert newest.group == oldest.group


def test_changed_and_unchanged_answers(entries):
    limit = find(entries, "tencent-sms-faq-2018-pdf", "短信签名是否有个数限制")
    changed = {e["doc"]: e["answer_changed"] for e in limit.editions}
    assert changed == {"tencent-sms-faq-2025-pdf": False, "tencent-sms-faq-2018-pdf": True}
    same = find(entries, "tencent-sms-faq-2025-pdf", "模板名称怎么填写")
    assert not any(e["answer_changed"] for e in same.editions)
    reply = find(entries, "tencent-sms-faq-md-api3", "对方收到信息是否可以回复")
    assert not any(e["answer_changed"] for e in reply.editions)


def test_answer_diff_shows_the_change(entries):
    newest = find(entries, "tencent-sms-faq-2025-pdf", "短信签名是否有个数限制")
    oldest = find(entries, "tencent-sms-faq-2018-pdf", "短信签名是否有个数限制")
    diff = answer_diff(newest, oldest)
    assert "-短信签名个数上限为200" in diff and "+短信签名个数上限为50" in diff


def test_similar_questions_of_one_edition_stay_apart(entries):
    content = find(entries, "tencent-sms-faq-2025-pdf", "我如何知道哪些短信内容是能发的")
    template = find(entries, "tencent-sms-faq-2025-pdf", "我如何知道短信哪些是能发的")
    assert content.group != template.group
    old = find(entries, "tencent-sms-faq-2018-pdf", "我如何知道短信哪些是能发的")
    assert old.group == template.group
