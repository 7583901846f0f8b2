"""Vendor error codes the FAQ never prints are searched by what the vendor says they mean."""

from __future__ import annotations

import pytest

from assistant.config import Settings
from assistant.error_codes import ErrorCodes
from assistant.errors import CorpusError


@pytest.fixture(scope="module")
def codes():
    return ErrorCodes.load(Settings.from_env().error_codes_path)


def test_the_bundled_table_names_both_vendors_codes(codes):
    vendors = {code.vendor for code in codes.codes}
    assert vendors == {"tencent", "aliyun"} and len(codes.codes) > 80
    assert len({code.code.casefold() for code in codes.codes}) == len(codes.codes)


@pytest.mark.parametrize("text, meaning_word", [
    ("LimitExceeded.PhoneNumberOneHourLimit 是什么意思", "1小时"),
    ("got limitexceeded.phonenumberonehourlimit from SendSms", "1小时"),  # case-folded
    ("isv.BUSINESS_LIMIT_CONTROL 触发了", "流控"),  # Alibaba's codes, with or without their isv. prefix
    ("返回 AMOUNT_NOT_ENOUGH", "余额不足"),
])
def test_a_named_code_brings_its_meaning(codes, text, meaning_word):
    (meaning,) = codes.meanings(text)
    assert meaning_word in meaning


def test_a_code_is_matched_as_a_whole_word_only(codes):
    assert codes.meanings("LimitExceeded.PhoneNumberOneHourLimitX") == []
    assert codes.meanings("短信签名可以修改吗") == []


def test_a_malformed_row_is_a_corpus_error_and_a_missing_table_is_empty(tmp_path):
    table = tmp_path / "error_codes.tsv"
    table.write_text("vendor\tcode\tmeaning\ntencent\tFailedOperation.X\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="error_codes.tsv:2"):
        ErrorCodes.load(table)
    assert ErrorCodes.load(tmp_path / "absent.tsv").codes == []


def test_search_expands_only_codes_no_entry_prints(searcher):
    unprinted = searcher.analyse("LimitExceeded.PhoneNumberOneHourLimit 报错")
    assert "频率限制" in unprinted.focus and any("1小时" in term for term in unprinted.expansions)
    printed = searcher.analyse("FailedOperation.TemplateIncorrectOrUnapproved 报错")
    assert printed.focus == "FailedOperation.TemplateIncorrectOrUnapproved 报错"


def test_an_unprinted_code_the_message_puts_behind_it_is_not_searched_by_its_meaning(searcher):
    behind = searcher.analyse("AccessKey 配错了报 InvalidAccessKeyId.NotFound，已经改好了。顺便问一下，能开发票吗？")
    assert behind.code_behind and "不存在" not in behind.focus + " ".join(behind.expansions)
    result = searcher.search("Our server clock drifted and calls came back with AuthFailure.SignatureExpire, NTP "
                             "sorted that out. Unrelated: can we get an invoice for the SMS we bought?")
    assert not result.abstained and "发票" in result.hits[0].entry.question


def test_an_unprinted_rate_limit_code_finds_the_rate_limit_entries(searcher):
    result = searcher.search("LimitExceeded.PhoneNumberOneHourLimit 怎么解决")
    assert not result.abstained
    assert "频率" in result.hits[0].entry.question or "流控" in result.hits[0].entry.question


def test_a_named_code_tells_whose_it_is(codes):
    assert codes.vendors("接口返回 isv.BUSINESS_LIMIT_CONTROL") == {"aliyun"}
    assert codes.vendors("LimitExceeded.PhoneNumberDailyLimit again") == {"tencent"}
    assert codes.vendors("短信发不出去") == set()


@pytest.mark.parametrize("query, vendor", [
    ("SendSms 返回 isv.BUSINESS_LIMIT_CONTROL 怎么办", "aliyun"),  # a code of the vendors' references
    ("调接口报1014", "tencent"),  # a code an entry's question names ("返回1014错误如何处理？")
    ("阿里云 报1014", "aliyun"),  # the vendor the query names comes first
    ("发送记录里 0086 开头的号码", None),  # a number only answers print says nothing of a vendor
    ("短信发不出去", None),
])
def test_a_pasted_code_names_its_vendor(searcher, query, vendor):
    analysed = searcher.analyse(query)
    assert searcher._vendor_named(query, analysed) == vendor


def test_every_data_table_reports_a_bad_row_by_file_and_line(tmp_path):
    from assistant.decisive import DecisiveWords
    from assistant.glossary import Glossary

    glossary = tmp_path / "glossary.tsv"
    glossary.write_text("# terms\nenglish\tchinese\nsignature\t签名\nsignature 签名\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"glossary.tsv:4: expected English and Chinese terms"):
        Glossary.load(glossary)
    decisive = tmp_path / "decisive.tsv"
    decisive.write_text("facet\tconcept\tphrases\nobject\t\t签名\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"decisive.tsv:2"):
        DecisiveWords.load(decisive)


def test_a_pasted_code_is_looked_up_once_beside_the_exact_channel(searcher, monkeypatch):
    """One lookup (whose code it is, whether any entry prints it) and the exact channel's own, filtered one:
    on PostgreSQL each lookup is a round trip."""
    lookups = []
    exact = searcher.store.exact
    monkeypatch.setattr(searcher.store, "exact", lambda *args, **kwargs: lookups.append(args) or exact(*args, **kwargs))
    result = searcher.search("调接口报1014，模板明明审核通过了")
    assert len(lookups) == 2
    assert result.hits and "1014" in result.hits[0].entry.question
