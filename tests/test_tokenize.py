"""Tokenizer and glossary: identifiers whole, domain terms kept, width and case folded."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.config import PROJECT_ROOT
from assistant.glossary import Glossary
from assistant.tokenize import Tokenizer, collect_terms, corpus_identifiers, query_identifiers


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    cache = tmp_path_factory.mktemp("jieba")
    terms = collect_terms(["为什么驳回理由为“中性化签名”？"], ["免打扰名单", "SDK AppID", "国际/港澳台短信"])
    tokenizer = Tokenizer(terms, cache)
    tokenizer.tokens("预热")
    tokenizer.cache = cache
    return tokenizer


def test_jieba_caches_in_the_apps_directory(tokenizer):
    assert list(Path(tokenizer.cache).glob("jieba*.cache"))


def test_api_error_names_and_codes_survive_whole(tokenizer):
    tokens = tokenizer.tokens("短信发送提示：FailedOperation.SignatureIncorrectOrUnapproved，返回1014")
    assert "failedoperation.signatureincorrectorunapproved" in tokens
    assert "1014" in tokens


def test_domain_terms_and_spaced_identifiers_stay_whole(tokenizer):
    assert "免打扰名单" in tokenizer.tokens("手机免打扰名单是什么")
    assert "中性化签名" in tokenizer.tokens("中性化签名是什么意思")
    tokens = tokenizer.tokens("如何获取 SDK AppID")
    assert "sdk_appid" in tokens and "appid" in tokens
    assert "港澳台短信" in tokenizer.tokens("国际/港澳台短信")


def test_a_cut_remembered_gives_the_same_tokens_as_a_fresh_cut(tokenizer):
    message = "模板审核通过后发送失败。模板审核通过后发送失败，怎么办？"
    fresh = tokenizer.tokens(message)
    tokenizer.tokens(message).append("改动")  # a caller's list is its own
    assert tokenizer.tokens(message) == fresh
    tokenizer.forget()
    assert tokenizer.tokens(message) == fresh
    assert fresh.count("模板") == 2 and "失败" in fresh


def test_width_and_case_are_folded(tokenizer):
    assert tokenizer.tokens("ＳＭＳ　１０１４") == tokenizer.tokens("sms 1014")
    assert query_identifiers("返回１０１４") == {"1014"}
    assert query_identifiers("FAILEDOPERATION.SIGNATUREINCORRECTORUNAPPROVED") == {
        "failedoperation.signatureincorrectorunapproved"
    }


def test_identifiers_a_query_sets_aside_are_not_asked_about():
    assert query_identifiers("除了1004、1014这几个，其他错误码去哪看") == set()
    assert query_identifiers("other than 1004 and 1014, where are the codes listed") == set()
    assert query_identifiers("not 1014 but 1016") == {"1016"}
    assert query_identifiers("a page for the other error codes, not just 1004 and 1014?") == set()
    assert query_identifiers("except FailedOperation.TemplateIncorrectOrUnapproved we also get 1033") == {"1033"}
    assert query_identifiers("返回1014错误，除此之外一切正常") == {"1014"}


def test_an_api_error_name_also_gives_its_words(tokenizer):
    tokens = tokenizer.tokens("LimitExceeded.PhoneNumberDailyLimit 测试号")
    assert "limitexceeded.phonenumberdailylimit" in tokens
    assert {"limit", "exceeded", "phone", "number", "daily"} <= set(tokens)
    assert "not" not in tokenizer.tokens("AuthFailure.SecretIdNotFound")


def test_corpus_identifiers_need_the_documented_shape():
    assert corpus_identifiers(["错误 60008 与 UnauthorizedOperation.SmsSdkAppIdVerifyFail"]) == {
        "60008", "unauthorizedoperation.smssdkappidverifyfail"
    }
    assert corpus_identifiers(["价格 0.045 元，2018.10 更新，手机号 13800138000"]) == set()
    assert corpus_identifiers(["见 [文档](https://cloud.tencent.com/document/product/382/3773#%E7%AD%BE.E5.AD.97) 与 1014"]) == {"1014"}


def test_the_glossary_expands_english_to_chinese_and_synonyms():
    glossary = Glossary.load(PROJECT_ROOT / "corpus" / "glossary.tsv")
    assert "签名" in glossary.expansions("my signature was rejected")
    assert "驳回" in glossary.expansions("my signature was rejected")
    assert "免打扰名单" in glossary.expansions("手机号在黑名单里")
    assert "频率限制" in glossary.expansions("What is the rate limit?")
    assert glossary.expansions("weather in Paris") == []
    # whole words only: "us" inside "status" is not the United States
    assert "美国" not in glossary.expansions("status")
