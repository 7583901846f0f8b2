"""Question → a phrase only its own answer contains, written from reading the documents."""

from __future__ import annotations

import re

import pytest

from assistant.config import PROJECT_ROOT
from conftest import find
from gold_2025 import GOLD_2025, ORDER_UNCERTAIN

PDF_2025 = "tencent-sms-faq-2025-pdf"
PDF_2018 = "tencent-sms-faq-2018-pdf"
MD_API3 = "tencent-sms-faq-md-api3"
MD_API2 = "tencent-sms-faq-md-api2"
ALIYUN = "aliyun-sms-delivery-faq"

PAIRS_2025 = [
    # answers printed before their question in the page block
    ("短信支持使用不指定产品代金券吗", "均不支持使用不指定产品代金券"),
    ("返回1031错误码", "短信系列产品现默认为预付费业务"),
    ("国内短信套餐包支持余额退款吗", "国内短信套餐包自购买之日起3个月内"),
    ("国际/港澳台短信服务的欠费会怎么样", "当您未开通按量日结"),
    ("短信需不需要收取额外的费用", "目前短信的接口使用是免费的"),
    ("能否使用同一个短信套餐包", "可以使用同一个短信套餐包进行计费"),
    ("如何添加告警联系人", "详细操作请参见配置告警联系人"),
    ("我的账号资质主体是中国香港", "国内短信目前仅支持中国大陆公司申请签名"),
    ("同一个公司可以多次申请资质吗", "同一个公司可以多次提交资质申请"),
    ("已审核通过的资质可以修改吗", "不支持修改资质属性"),
    ("个体户没有公章怎么办", "亲自签名并按手印"),
    ("如果我不补充不提交资质", "工信管函【2023】794号"),
    ("签名申请被驳回怎么办", "上传正确的真实证明资料"),
    ("短信签名是否有个数限制", "短信签名个数上限为50"),
    ("短信签名是否可以修改", "已经审核通过的签名是不支持修改的"),
    ("签名备注应填写什么", "签名备注为选填"),
    ("实名制报备流程需要多久", "目前运营商实名报备流程平均需要5-7个工作日"),
    ("如何判断我申请的签名是否报备完成", "查看签名状态列"),
    ("模板参数中可直接写链接吗", "模板中的变量参数不允许传链接"),
    ("短信内容可以放超链接吗", "链接地址只能是常量"),
    ("短信的审核时长是多久", "2个小时左右会反馈审核结果"),
    ("模板中变量的括号是什么格式", "半角英文格式的 {数字}"),
    ("短信模板可以修改吗", "已审核的模板不支持修改"),
    ("短信正文模板是否可以申请短信变量", "可以用变量参数{1}代替"),
    ("提示需要添加“拒收请回复R”", "必须携带退订方式"),
    ("能否支持发送网站链接", "URL 需直接填写到正文模板中"),
    ("涉及到贷款类的短信是否可以发送", "不支持发送贷款内容"),
    ("腾讯云短信业务可以发送面试类短信吗", "不支持发送面试、招聘类"),
    ("催款短信可以发送吗", "不支持发送贷款和催款内容"),
    ("涉及装修的内容能群发吗", "装修营销类"),
    ("是否支持发送教育方面的营销短信", "教育营销类"),
    ("可以发送下载 App 的贷款链接的短信吗", "不支持发送金融贷款类短信"),
    ("短信内容包含返利信息", "不支持发送返利的内容"),
    ("拉新是什么意思", "拉新是指给未购买过产品"),
    ("腾讯云短信发送后，对方收到信息是否可以回复", "72小时内回复才有效"),
    ("是否支持号码去重", "自动做去重处理"),
    ("为什么预览短信内容时，数字会出现星号", "对数字进行加密入库"),
    ("变量部分内容是英文或者英文+数字组合", "纯英文、英文+数字的内容进行加密入库"),
    ("SignatureIncorrectOrUnapproved", "签名只能由中英文、数字组成"),
    ("SmsSdkAppIdVerifyFail", "是否属于云 API 密钥的关联账户"),
    ("什么是 SenderID", "消息发件人的名称"),
    ("返回1004错误如何处理", "检查参数名称是否正确"),
    ("返回1016错误如何处理", "确认 AppID 和 AppKey 是否正确"),
    ("返回60008错误如何处理", "Content-Type: application/json;charset=utf-8"),
    ("返回1001（sig 校验失败）错误如何处理", "sig 生成的随机数"),
    # answers that follow their own question
    ("国内短信、国际/港澳台短信计费方式是什么", "现默认采用套餐包预付费的计费方式"),
    ("返回失败1033错误码", "使用了其他后付费服务且没有缴清款项"),
    ("用户回复的短信是否收费", "腾讯云不收取用户回复的短信"),
    ("提示套餐包不足，是怎么回事", "新购短信套餐包需要10秒左右生效"),
    ("多少个字算一条短信", "按153字/条分隔成多条计费"),
    ("在哪里可以查看抵扣明细", "套餐包抵扣规则"),
    ("多个签名场景下，调用 API 发送短信时如何指定签名", "赋值 sign 字段"),
    ("短信模板是否有个数限制", "短信模板个数上限为200"),
    ("腾讯云短信服务是否支持发送彩信", "目前不支持"),
    ("手机免打扰名单是什么", "1015手机号在免打扰名单库中"),
    ("如何获取短信 SDK AppID 和 AppKey", "应用程序接入账户和密钥"),
    ("该号码未收到短信且控制台短信发送记录查询不到该号码", "检查发送文件里号码是否有其他字符"),
    # answers continued in the next page block
    ("国际/港澳台短信套餐包支持余额退款吗", "国际/港澳台套餐包自购买之日起可随时"),
    ("短信是否会有欠费通知", "会，您也可以在控制台配置告警联系人"),
    ("如何预防短信轰炸", "增加图形验证码"),
    ("发送国际/港澳台短信是否有数量限制", "默认日限额为100条"),
    ("个人用户能申请短信签名吗", "个人认证用户可以在控制台"),
    ("短信能否发送加微信群的内容", "不支持发送关注或添加微信和 QQ 群"),
    ("返回1014错误如何处理", "确认模板中是否含变量值"),
    ("如何获取短信 API SecretId", "单击新建密钥即可以创建一对密钥"),
    ("如何获取短信 API SecretId", "短信 SecretId 与 AccessKey ID 是一样的"),
    ("为什么短信状态一直显示发送中", "运营商状态回执延迟"),
    ("TemplateIncorrectOrUnapproved", "在TemplateParamSet项传入变量参数"),
    ("TemplateIncorrectOrUnapproved", "模板参数的个数需要与 TemplateId"),
    ("短信签名显示“已生效”，为什么还会发短信失败", "新增申请的签名，在腾讯云平台已审核通过"),
    # questions split over lines
    ("前期购买的短信套餐包是否可用于营销短信？", "个人认证转企业认证后可用于发送营销短信"),
    ("短信发送提示：UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber 如何处理？",
     "既有国内手机号也有国际手机号"),
    # mixed: the lead paragraph before the question, the list after it
    ("短信默认的频率限制是什么", "同一手机号一个自然日最多发送2条"),
    ("短信默认的频率限制是什么", "为了保障业务和通道安全"),
    ("用户没有收到短信怎么处理", "手机号处于免打扰名单状态"),
    ("用户没有收到短信怎么处理", "查看对应号码的短信发送状态和备注"),
    ("调用接口耗时比较长怎么办", "dig sms.tencentcloudapi.com"),
    ("为什么用户很久才收到短信", "查看本地记录的请求发送时间"),
]

# A neighbour's answer that must not leak into this one.
NOT_IN_2025 = [
    ("返回1014错误如何处理", "返回1004错误"),
    ("返回1004错误如何处理", "返回1014错误"),
    ("如何获取短信 API SecretId", "SDK AppID 和 AppKey 是开发者"),
    ("返回1016错误如何处理", "返回60008错误"),
    ("如何预防短信轰炸", "您可以登录短信控制台，单击目标应用名称"),
    ("短信是否会有欠费通知", "如有任何疑问"),
    ("国际/港澳台短信套餐包支持余额退款吗", "https://"),
]

PAIRS_ALIYUN = [
    ("签名实名制报备问题。应运营商要求", "实名制报备所需流程"),
    ("针对签名实名制报备问题，您需要做什么", "确认有可用短信资质：请在控制台资质管理页面"),
    ("短信服务群发有什么限制", "最多可以向100个手机号码分别发送短信"),
    ("收到的验证码不全，前面是0就自动省略，怎么办？", 'TemplateParam = {"code":"0207"}'),
    ("为什么错误码显示黑名单，如W-BLACK等？", "12321、运营商、工信部"),
    ("接收短信的手机号码是否需要添加“+”还是直接00开头？", "844987654321"),
    ("短信发送失败的可能原因", "携号转网"),
    ("国际/港澳台短信是否也有流控限制", "不超过20条"),
    ("短信服务可以取消流控限制吗", "不可以取消"),
    ("为什么短信状态一直显示发送中", "72小时内恢复正常"),
    ("短信模板会受到关联签名的影响", "没有强关联关系"),
    ("发送到越南的短信类型是什么", "发送到越南的短信类型只支持OTP"),
    ("短信发送记录储存时间是多久", "保存历史3年数据"),
    ("什么是短信发送流控限制", "1条/分钟，5条/小时，10条/天"),
    ("群发助手的短信发送和导入限制", "不可超过3MB"),
    ("处于发送中的短信如何取消", "无法取消"),
    ("控制台发送记录为什么会显示星号", "脱敏展示"),
]

PAIRS_2018 = [
    ("短信签名是否有个数限制", "短信签名个数上限为200"),
    ("返回 1031 错误码", "短信为预付费业务"),
    ("短信默认的频率限制是什么", "同一号码同一内容 30 秒内最多发送 1 条"),
    ("如何查询单个手机发送记录", "页面查询，如下所示"),
    ("语音频率限制策略是什么", "同一被叫号码10分钟内最多发送2条"),
    ("如何添加告警联系人", "强烈建议使用该功能"),
    ("模板备注应填写什么", "您的验证码为123456"),
    ("模板参数中可直接写链接吗", "不允许传链接"),
    ("多个签名如何发送短信", "sign字段"),
    ("60008 错误是什么错误", "公网 dns server"),
    ("如何创建和查看应用 (sdkappid) ?", "每个短信应用拥有唯一的应用id"),
    ("套餐包支持余额退款吗", "自购买之日起 5 天内"),
]

PAIRS_API3 = [
    ("手机黑名单是什么", "1015手机号在黑名单库中"),
    ("如何获取短信 API SecretId", "说明：\n- 用户必须严格保管安全凭证"),
    ("如何获取短信 SDK AppID 和 AppKey", "是用来校验短信发送请求合法性的密码"),
    ("是否支持短信群发", "一次最多不要超过200个手机号"),
    ("返回1016错误如何处理", "手机号码正确格式为连续数字"),
    ("对方收到信息是否可以回复", "72小时内回复才有效"),
    ("发送消息的号码是什么", "1069开头"),
    ("TemplateIncorrectOrUnapproved", "注意：模板参数的个数需要与 TemplateId"),
    ("是否可以开发票", "发票管理 (https://console.cloud.tencent.com/expense/invoice)"),
    ("调用接口耗时比较长怎么办", "dig yun.tim.qq.com"),
    ("ContainDomesticAndInternationalPhoneNumber", "+8613711112222"),
]

PAIRS_API2 = [
    ("用户没有收到短信", "双卡双待"),
    ("用户没有收到短信", "咨询sms helper (https://cloud.tencent.com/document/product/382/3773)"),
    ("调用接口耗时比较长", "长连接+连接池"),
    ("很久才收到短信", "进入了人工审核"),
    ("很久才收到短信", "(https://cloud.tencent.com/document/product/382/9558#2-"),
    ("手机黑名单", "申请解除黑名单"),
    ("1004错误详解", "单引号当做双引号"),
    ("1004错误详解", "这里 (http://tool.oschina.net/codeformat/json)"),
    ("1014错误详解", "从1开始连续编号"),
    ("60008错误详解", "公网dns server"),
    ("其他常见错误码详解", "其他错误码 (https://cloud.tencent.com/document/product/382/3771"),
]


POSITIVE = [
    (doc, question, phrase)
    for doc, pairs in (
        (PDF_2025, PAIRS_2025),
        (ALIYUN, PAIRS_ALIYUN),
        (PDF_2018, PAIRS_2018),
        (MD_API3, PAIRS_API3),
        (MD_API2, PAIRS_API2),
    )
    for question, phrase in pairs
]


@pytest.mark.parametrize("doc,question,phrase", POSITIVE, ids=lambda value: str(value)[:40])
def test_answer_holds_its_phrase(entries, doc, question, phrase):
    assert phrase in find(entries, doc, question).answer


@pytest.mark.parametrize("question,phrase", NOT_IN_2025)
def test_2025_export_keeps_neighbours_out(entries, question, phrase):
    assert phrase not in find(entries, PDF_2025, question).answer


def test_tables_of_contents_are_not_answers(entries):
    last = find(entries, ALIYUN, "控制台发送记录为什么会显示星号")
    assert "上一篇" not in last.answer and "反馈" not in last.answer
    first = find(entries, ALIYUN, "签名实名制报备问题。应运营商要求")
    assert "短信使用限制相关" not in first.answer


def test_page_furniture_is_dropped(entries):
    for entry in entries:
        if entry.source.path.endswith("-pdf.txt"):  # the PDF's page footer link (the web pages link it on purpose)
            assert "https://cloud.tencent.com/document/product/382/8414" not in entry.answer
        assert "版权" not in entry.answer
        assert "数据总览" not in entry.answer  # the flattened console screenshot of 2018
        assert "![" not in entry.answer and "[](id:" not in entry.answer
        assert ">?" not in entry.answer and ">!" not in entry.answer
        if entry.doc.startswith("tencent-sms-faq-md"):
            assert "**" not in entry.answer  # Markdown bold, not the masked digits of "1**2"


def test_parenthetical_note_is_not_glued_to_the_next_question(entries):
    voice = find(entries, PDF_2018, "语音频率限制策略是什么")
    assert voice.question == "语音频率限制策略是什么？"


# ---- the 2025 export, every entry, line by line (tests/gold_2025.py) ----

PDF_2025_PATH = PROJECT_ROOT / "corpus" / "tencent" / "sms-faq-2025-pdf.txt"
_SOURCE_2025 = PDF_2025_PATH.read_text(encoding="utf-8").splitlines()


def _is_content(number: int) -> bool:
    """A line that carries answer text: not blank, not a URL, not a stray letter or the section footer."""
    text = _SOURCE_2025[number - 1].strip()
    return len(text) > 1 and not re.match(r"https?://\S+$", text) and not text.startswith("如有任何疑问")


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _answer_lines(entry, question_line: int) -> set[int]:
    spans = entry.source.spans or ((entry.source.line_start, entry.source.line_end),)
    lines = {n for start, end in spans for n in range(start, end + 1) if _is_content(n)}
    question = _squeeze(entry.question)
    own = {n for n in range(question_line, question_line + 5)
           if n in lines and _squeeze(_SOURCE_2025[n - 1]) in question}
    return lines - own


def test_gold_covers_every_2025_entry(entries):
    questions = [e for e in entries if e.doc == PDF_2025]
    assert len(GOLD_2025) == len(questions) == 112
    found = {find(entries, PDF_2025, row[1]).id for row in GOLD_2025}
    assert found == {e.id for e in questions}
    for question_line, question, *_ in GOLD_2025:
        assert _squeeze(_SOURCE_2025[question_line - 1]) in _squeeze(find(entries, PDF_2025, question).question)


@pytest.mark.parametrize("row", GOLD_2025, ids=[str(row[0]) for row in GOLD_2025])
def test_2025_entry_is_built_from_exactly_its_lines(entries, row):
    question_line, question, first, last, ranges = row
    entry = find(entries, PDF_2025, question)
    expected = {n for start, end in ranges for n in range(start, end + 1) if _is_content(n)}
    assert _answer_lines(entry, question_line) == expected
    if question_line in ORDER_UNCERTAIN:
        assert first in entry.answer and last in entry.answer
    else:
        assert entry.answer.startswith(first), entry.answer[:80]
        assert entry.answer.endswith(last), entry.answer[-80:]


# ---- other editions only break ties: adding one never re-pairs the 2025 export ----

EXTRA_PAGES = PROJECT_ROOT.parent / "shared" / "seeds" / "extra"


def _references_of_markdown(path) -> list:
    """Each '#…' heading of a Markdown page with the text under it, as another edition's entry."""
    from assistant.ingest.pdf_align import Reference

    references, question, lines = [], None, []
    for line in path.read_text(encoding="utf-8").splitlines() + ["# end"]:
        if line.startswith("#"):
            if question:
                references.append(Reference(question, "\n".join(lines).strip()))
            question, lines = line.lstrip("#").strip(), []
        else:
            lines.append(line)
    return references


def _corpus_references(entries) -> list:
    from assistant.ingest.pdf_align import Reference

    return [Reference(e.question, e.answer) for e in entries if e.vendor == "tencent" and e.doc != PDF_2025]


@pytest.mark.parametrize("pages", ["tencent-sms-usage-faq-zh.md", "*.md"])
def test_added_editions_do_not_re_pair_the_2025_export(entries, pages):
    from assistant.ingest.pdf_text import parse_pdf_text

    if not EXTRA_PAGES.is_dir():
        pytest.skip("shared/seeds/extra is not beside this checkout")
    path = PDF_2025_PATH
    base = _corpus_references(entries)
    extra = [ref for page in sorted(EXTRA_PAGES.glob(pages)) for ref in _references_of_markdown(page)]
    assert extra
    before = {e.question: (e.answer, e.spans) for e in parse_pdf_text(path, base)}
    after = {e.question: (e.answer, e.spans) for e in parse_pdf_text(path, base + extra)}
    assert after == before
    assert all(answer for answer, _ in after.values())
    shipped = {e.question: e.answer for e in entries if e.doc == PDF_2025}
    assert {question: answer for question, (answer, _) in after.items()} == shipped


# ---- meaning as evidence: the embedder's vectors, cached on disk by content hash ----


class _CountingEmbedder:
    """The real bundled embedder, counting the texts it is asked to embed."""

    def __init__(self):
        from assistant.embed import load_embedder

        self.inner = load_embedder()
        self.embedded = 0

    @property
    def id(self):
        return self.inner.id

    def embed_queries(self, texts):
        self.embedded += len(texts)
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts):
        self.embedded += len(texts)
        return self.inner.embed_passages(texts)


def test_meaning_prefers_the_answering_question_and_is_cached(tmp_path):
    from assistant.ingest.pdf_meaning import MeaningScorer

    questions = ["个人可以发送营销短信吗？", "能发送金融、教育、房地产这些行业的短信吗？"]
    paragraphs = ["个人认证用户暂不支持发送营销短信，详情请参见使用须知。", "禁止发送金融相关的所有内容（验证码、通知和营销短信）。"]
    first = MeaningScorer(_CountingEmbedder(), tmp_path)
    scores = first.similarity(questions, paragraphs)
    assert scores[0, 0] > scores[0, 1] and scores[1, 1] > scores[1, 0]
    assert first.embedder.embedded == 4 and list((tmp_path / "pairing").glob("*.npz"))
    again = MeaningScorer(_CountingEmbedder(), tmp_path)
    assert (again.similarity(questions, paragraphs) == scores).all()
    assert again.embedder.embedded == 0  # read back from disk, the very same floats


def test_pairing_is_the_same_with_a_cold_cache(entries, tmp_path):
    from assistant.ingest.pdf_meaning import MeaningScorer
    from assistant.ingest.pdf_text import parse_pdf_text

    cold = MeaningScorer(_CountingEmbedder(), tmp_path)
    parsed = parse_pdf_text(PDF_2025_PATH, _corpus_references(entries), cold)
    assert cold.embedder.embedded > 0
    assert [(p.question, p.answer) for p in parsed] == [(e.question, e.answer) for e in entries if e.doc == PDF_2025]


def test_placement_names_the_deciding_evidence(entries):
    decided = {"meaning", "content", "structure", "follows-question"}
    for entry in (e for e in entries if e.doc == PDF_2025):
        assert set(entry.placement) <= decided | {"edition-confirmed"}, entry.question
        assert set(entry.placement) & decided, entry.question  # another edition only ever confirms
    # one paragraph each, told apart by what they say (个人 vs 企业认证), not by order or words
    assert find(entries, PDF_2025, "个人可以发送营销短信吗").placement == ("meaning",)
    assert find(entries, PDF_2025, "发送营销短信需要什么条件").placement == ("meaning",)
