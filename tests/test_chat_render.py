"""The chat's text: plain-text copies, links, edition relations, follow-ups, filter conflicts, long messages."""

from __future__ import annotations

import dataclasses

from assistant.excerpt import informative_excerpt
from assistant.web.conversation import filter_conflict, follow_up_core, read_message
from assistant.web.labels import edition_name, vendor_name
from assistant.web.answer_text import answer_html, plain_answer
from assistant.web.edition_view import edition_relation
from assistant.web.render import Turn, reply_text, turn_html


def test_the_plain_answer_keeps_lines_and_drops_markup():
    text = "步骤：\n1、确认**是否有空格**；\n2、参见[文档](https://example.com/a)。"
    assert plain_answer(text) == "步骤：\n1、确认是否有空格；\n2、参见文档 (https://example.com/a)。"


def test_a_link_in_parentheses_does_not_swallow_the_text_after_it():
    rendered = answer_html("请咨询sms helper (https://cloud.tencent.com/document/product/382/3773)解决；<b>")
    assert '<a href="https://cloud.tencent.com/document/product/382/3773"' in rendered
    assert "</a>)解决；&lt;b&gt;" in rendered


def test_edition_relations_tell_spelling_and_punctuation_from_real_changes(searcher):
    entries = {e.id: e for e in searcher.index.entries}
    newest = next(e for e in entries.values() if e.doc == "tencent-sms-faq-2025-pdf" and "1014" in e.question)
    others = {entries[x["id"]].doc: entries[x["id"]] for x in newest.editions if x["id"] != newest.id}
    assert edition_relation(newest, others["tencent-sms-faq-md-api3"]) == "spelling"  # 模版 → 模板
    assert edition_relation(newest, others["tencent-sms-faq-2018-pdf"]) == "changed"  # 7 steps → 8
    assert edition_relation(others["tencent-sms-faq-md-api2"], newest) == "changed"  # relative to the one shown
    punctuated = dataclasses.replace(newest, answer=newest.answer.replace("。", "．").replace("，", ","))
    assert edition_relation(newest, punctuated) == "punctuation"
    assert edition_relation(newest, newest) == "same"


def test_labels_follow_one_language():
    assert edition_name("Markdown edition (API 3.0, undated)", "zh") == "Markdown 版（API 3.0，未注明日期）"
    assert vendor_name("腾讯云 Tencent Cloud", "zh") == "腾讯云" and vendor_name("腾讯云 Tencent Cloud", "en") == "Tencent Cloud"


def test_a_short_follow_up_is_read_with_the_previous_question(searcher):
    names = searcher.vendor_names  # the manifest's names and aliases, from the build
    assert follow_up_core("那阿里云呢？") == "阿里云" and follow_up_core("and for Alibaba?") == "Alibaba"
    assert follow_up_core("返回1014错误如何处理") is None and follow_up_core("签名申请被驳回怎么办？") is None
    reading = read_message("那阿里云呢？", "腾讯云短信发送失败怎么排查", names)
    assert reading.vendor == "aliyun" and reading.query == "短信发送失败怎么排查"
    assert read_message("and for Alibaba?", "How do I fix error 1014?", names).vendor == "aliyun"
    assert read_message("那阿里云呢？", None, names).vendor is None


def test_an_edition_of_another_vendor_is_a_conflict(searcher):
    entries = searcher.index.entries
    assert "no entry can match both" in filter_conflict(entries, "aliyun", "tencent-sms-faq-2025-pdf", "en")
    assert "属于腾讯云" in filter_conflict(entries, "aliyun", "tencent-sms-faq-2025-pdf", "zh")
    assert filter_conflict(entries, "tencent", "tencent-sms-faq-2025-pdf", "en") is None
    assert filter_conflict(entries, "aliyun", "all", "en") is None


def test_a_long_message_keeps_its_sentence_with_the_error_code():
    message = "我们在做国际短信业务，账户有欠费提醒。" * 40 + "另外调用接口返回1014错误，怎么处理？"
    excerpt = informative_excerpt(message, 500)
    assert len(excerpt) <= 500 and "1014" in excerpt
    assert informative_excerpt("短消息", 500) == "短消息"
    assert len(informative_excerpt("一" * 2000, 500)) == 500


def test_a_run_on_message_keeps_its_clause_with_the_error_code_wherever_it_is():
    message = "我们在做国际短信业务，" * 30 + "接口返回1014错误，" + "账户有欠费提醒，" * 40
    excerpt = informative_excerpt(message, 500)
    assert len(excerpt) <= 500 and "接口返回1014错误" in excerpt


def test_a_long_message_searches_the_sentence_carrying_the_ask():
    from customer_messages import ASKS_ABOUT_CODE, MENTIONS_CODE_ASKS_ELSE

    assert len(ASKS_ABOUT_CODE) > 500 and len(MENTIONS_CODE_ASKS_ELSE) > 500
    about_code = informative_excerpt(ASKS_ABOUT_CODE, 500)
    assert "1014" in about_code and about_code.endswith("请问这个错误怎么处理？")  # the question points back to the code
    in_passing = informative_excerpt(MENTIONS_CODE_ASKS_ELSE, 500)
    assert in_passing == "国际短信怎么收费？"  # a code mentioned in passing does not outweigh the ask, nor a lead-in


def test_a_code_mentioned_in_passing_does_not_take_the_answer(searcher):
    from customer_messages import ASKS_ABOUT_CODE, MENTIONS_CODE_ASKS_ELSE

    assert "1014" in searcher.search(ASKS_ABOUT_CODE).hits[0].entry.question
    quoted = searcher.search(MENTIONS_CODE_ASKS_ELSE).hits[0].entry
    assert "1014" not in quoted.question and quoted.id == searcher.search("国际短信怎么收费？").hits[0].entry.id


def test_a_bare_question_clause_is_read_with_the_clause_before_it():
    excerpt = informative_excerpt("我们在做国际短信业务，" * 50 + "接口返回1014错误，请问怎么处理？", 500)
    assert excerpt == "接口返回1014错误， 请问怎么处理？"


def test_a_vote_arriving_after_a_newer_one_does_not_overwrite_it(built, tmp_path):
    import sqlite3

    from assistant.web.answering import Answerer
    from assistant.web.service import Service

    answerer = Answerer(Service.open(dataclasses.replace(built, data_dir=tmp_path)))
    session: dict = {}
    answerer.answer("如何申请短信签名", session, None, None)
    answer_id = session["last"]
    note = session["answers"][answer_id]
    answerer.vote(note, answer_id, -1, "答案是旧版本的", order=2)  # the comment, sent second, arrives first
    answerer.vote(note, answer_id, -1, None, order=1)
    with sqlite3.connect(tmp_path / "feedback.sqlite3") as db:
        rows = db.execute("SELECT vote, comment FROM feedback WHERE answer_id = ?", (answer_id,)).fetchall()
    assert rows == [(-1, "答案是旧版本的")]


def test_a_partial_match_is_said_above_the_quote_and_in_the_plain_reply(searcher):
    result = searcher.search("签名申请被驳回怎么办")
    partial = dataclasses.replace(result, partial="FAQ 只涉及“签名申请被驳回怎么办？”，没有涉及：<退款>。")
    entries = {e.id: e for e in searcher.index.entries}
    page = turn_html(partial, entries, Turn("签名申请被驳回怎么办", "a1"))
    note = page.index('class="faq-warning faq-partial"')
    assert note < page.index('class="faq-quote-question"') and "没有涉及：&lt;退款&gt;" in page
    assert "<退款>" not in page and "faq-partial" not in turn_html(result, entries, Turn("签名申请被驳回怎么办", "a2"))
    reply = reply_text(partial, "签名申请被驳回怎么办")
    assert reply.index("⚠ FAQ 只涉及") < reply.index(result.hits[0].entry.question)
