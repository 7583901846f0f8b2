"""Markdown pages from vendor doc repositories: clean answers, both heading styles, resolved links."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from assistant.ingest.markdown import heading_anchor, parse_markdown
from conftest import find

PAGES_ZH = "tencent-markdown-faq-pages-zh"
PAGES_EN = "tencent-markdown-faq-pages-en-international-site"
BASE = "https://cloud.tencent.com/document/product/382/"


def test_every_heading_of_the_ten_pages_is_an_entry(entries):
    per_file = Counter(Path(e.source.path).name for e in entries if e.doc in (PAGES_ZH, PAGES_EN))
    assert sum(per_file.values()) == 69  # the pages' README: 69 headings
    assert per_file["tencent-sms-billing-intl-zh.md"] == 6  # "## N 标题" topics
    assert per_file["tencent-sms-other-issues-intl-en.md"] == 9  # "### question?"
    billing = find(entries, PAGES_ZH, "短信长度")
    assert billing.question == "短信长度" and billing.answer.startswith("单次发送的短信（含签名）长度不要超过450字")


def test_relative_links_and_images_are_resolved(entries):
    package = find(entries, PAGES_ZH, "使用的短信套餐包为何却还有余额冻结")
    assert f"余额冻结 ({BASE}9556#3-.E4.BB.98.E6.AC.BE.E6.96.B9.E5.BC.8F)" in package.answer
    review = find(entries, PAGES_ZH, "短信签名规范")
    assert "咨询sms helper (https://cloud.tencent.com/doc/product/382/3773)" in review.answer
    rules = find(entries, PAGES_EN, "Regulations on Marketing SMS Messages")
    assert f"content regulations ({BASE}9557#3-.E7.9F.AD.E4.BF.A1.E5.86.85.E5.AE.B9.E8.A7.84.E8.8C.83)" in rules.answer
    signatures = find(entries, PAGES_EN, "Send an SMS message with One of the Signatures")
    assert f"SMS signatures ({BASE}9557#2-" in signatures.answer
    frequency = find(entries, PAGES_EN, "Frequency Limit of Sending SMS Messages")
    assert "(image: https://mc.qcloudimg.com/static/img/7ee8dd6892d2fbb59ffe8959279fa440/image.png)" in frequency.answer
    price = find(entries, PAGES_ZH, "短信、语音价格")
    assert "短信、语音价格 (https://cloud.tencent.com/product/sms#price)" in price.answer


def test_code_is_kept_and_the_contact_footer_is_not_an_answer(entries):
    json_hint = find(entries, PAGES_EN, "What can I do if a 1004 error is returned?")
    assert '`{"Name":"Xiao Ming", "Age":23}`' in json_hint.answer
    mms = find(entries, PAGES_ZH, "腾讯云短信服务是否支持发送彩信")
    assert mms.answer == "目前不支持。"
    assert mms.source.line_end == 44
    for entry in entries:
        assert "<span" not in entry.answer and "[](id:" not in entry.answer and "如有任何疑问" not in entry.answer


def test_html_anchors_sections_footers_and_empty_headings(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# 页面标题\n\n"
        "## 1 签名问题\n"
        '### <span id="q1"></span>签名可以修改吗？[](id:Q1)\n'
        "可以，在 `控制台 > 签名管理` 修改，参见[文档](/document/product/382/123)。<br>\n\n"
        "### 没有答案的问题？\n\n"
        "## 2 其他\n"
        "**重要**：见 ./9557#2-.E7.9F.AD 和 ![图](//img.example.com/a.png)\n\n"
        "如有任何疑问，请联系 [腾讯云短信小助手](https://example.com/chat)，将有专人为您解答。\n",
        encoding="utf-8",
    )
    entries = parse_markdown(page, BASE, "https://cloud.tencent.com/document/product/382/555")
    assert [e.question for e in entries] == ["签名可以修改吗？", "没有答案的问题？", "其他"]
    first, empty, other = entries
    assert first.section == "签名问题"
    assert first.answer == f"可以，在 `控制台 > 签名管理` 修改，参见文档 ({BASE}123)。"
    assert empty.answer == "" and empty.section == "签名问题"
    assert other.section is None and other.answer == "重要：见 ./9557#2-.E7.9F.AD 和 (image: https://img.example.com/a.png)"
    assert other.line_start == 9 and other.line_end == 10
    assert other.anchor == "2-.E5.85.B6.E4.BB.96"


def test_entry_urls_use_the_pages_own_anchors(entries):
    # The API 2.0 page links to its own heading "## 2 调用接口耗时比较长" as ./9558#2-.E8.B0.83…
    slow = find(entries, "tencent-sms-faq-md-api2", "调用接口耗时比较长")
    page = Path(__file__).parents[1] / "corpus" / slow.source.path
    self_link = "9558#2-.E8.B0.83.E7.94.A8.E6.8E.A5.E5.8F.A3.E8.80.97.E6.97.B6.E6.AF.94.E8.BE.83.E9.95.BF"
    assert self_link in page.read_text(encoding="utf-8")
    assert slow.source.url == "https://cloud.tencent.com/document/product/382/" + self_link
    assert heading_anchor("2 调用接口耗时比较长") == self_link.split("#")[1]


def test_english_anchors_and_page_urls_from_the_pages_own_links(entries):
    assert heading_anchor("2 It takes a long time to call the API") == "2-it-takes-a-long-time-to-call-the-api"
    rules = find(entries, PAGES_ZH, "短信签名规范")
    cited = find(entries, PAGES_EN, "Send an SMS message with One of the Signatures")
    assert rules.source.url.startswith(BASE + "9557#2-") and rules.source.url in cited.answer
    helper = find(entries, PAGES_EN, "What can I do if a 1014 error is returned?")
    assert "(https://intl.cloud.tencent.com/document/product/382/3773)" in helper.answer


def test_code_blocks_comments_entities_and_line_breaks(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "### 如何校验签名？\n"
        "<!-- 内部备注 -->按以下步骤计算 sig：<br/>先拼接参数&nbsp;再计算 `List<String>` 的 &lt;sig&gt;。\n\n"
        "```shell\n"
        "# 这一行是注释，不是标题\n"
        "    curl -d '{\"sig\": \"**x**\"}' https://yun.tim.qq.com\n"
        "```\n\n"
        "### 下一个问题？\n答案。\n",
        encoding="utf-8",
    )
    entries = parse_markdown(page, BASE)
    assert [e.question for e in entries] == ["如何校验签名？", "下一个问题？"]
    assert entries[0].answer == (
        "按以下步骤计算 sig：\n先拼接参数 再计算 `List<String>` 的 <sig>。\n"
        "```shell\n# 这一行是注释，不是标题\n    curl -d '{\"sig\": \"**x**\"}' https://yun.tim.qq.com\n```"
    )
