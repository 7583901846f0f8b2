"""Query analysis: the ask inside a long message, greetings dropped, short queries untouched."""

from __future__ import annotations

import pytest

from assistant.glossary import Glossary
from assistant.query_analysis import AnalysedQuery, analyse, ask_score, find_focus, sentences
from assistant.tokenize import Tokenizer


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return Tokenizer(["验证码", "短信签名", "套餐包"], tmp_path_factory.mktemp("jieba"))


VOCABULARY = {"验证码", "收到", "短信", "签名", "修改", "套餐包", "1014", "signature", "review"}


def test_a_short_query_is_its_own_focus_and_ask(tokenizer):
    assert find_focus("短信签名可以修改吗", tokenizer, VOCABULARY) == ("短信签名可以修改吗", "短信签名可以修改吗")


def test_a_long_chinese_message_is_searched_without_greetings_and_asks_with_its_question(tokenizer):
    message = ("您好！我们是一家做电商的公司，最近在搞双十一的促销活动，每天要给客户发很多短信。"
               "上周开始很多用户反馈收不到验证码短信。请问这是什么原因？谢谢！")
    focus, ask = find_focus(message, tokenizer, VOCABULARY)
    assert not focus.startswith("您好") and "谢谢" not in focus
    assert "请问这是什么原因" in ask and "收不到验证码" in ask  # the ask says little: the sentence before joins it
    assert "促销" not in ask


def test_an_error_code_sentence_always_joins_the_ask(tokenizer):
    message = ("Hi team, hope you are well. Yesterday our batch job started failing with error 1014 for every "
               "message. We did not change anything in our code. How do we fix this?")
    _, ask = find_focus(message, tokenizer, VOCABULARY)
    assert "1014" in ask and "How do we fix this?" in ask and "hope you are well" not in ask


def test_sentences_split_chinese_and_english_punctuation():
    assert sentences("你好。签名被驳回了！怎么办？ Thanks. How long does review take?") == [
        "你好。", "签名被驳回了！", "怎么办？", "Thanks.", "How long does review take?"]


@pytest.mark.parametrize("sentence, asks", [("怎么修改签名", True), ("can I change my signature", True),
                                            ("我们上周开通了短信服务。", False), ("Thanks a lot.", False)])
def test_ask_score_marks_questions(sentence, asks):
    assert (ask_score(sentence) > 0) is asks


def test_analyse_keeps_identifiers_and_glossary_expansions(tokenizer):
    glossary = Glossary.load(__import__("assistant.config", fromlist=["Settings"]).Settings.from_env().glossary_path)
    analysed = analyse("signature rejected, error 1014", tokenizer, VOCABULARY, glossary)
    assert isinstance(analysed, AnalysedQuery)
    assert "1014" in analysed.identifiers and "签名" in analysed.expansions
    assert analysed.english and not analysed.is_long


@pytest.mark.parametrize("message, behind", [
    ("1004的问题修好了，但是每次调用接口都要两三秒才返回，这正常吗？", True),
    ("Fixed UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber by splitting the list. How many "
     "numbers per request?", True),
    ("1016 先不管，国际短信一天最多能发多少条？", True),
    ("We got 1031 yesterday, but setting that aside: can we get an invoice for last month?", True),
    ("Sending works now after the 1016 error. How long are the delivery records kept?", True),
    ("返回1014，模板是不是没审核通过？", False),
    ("每次都是报了1031才发现套餐包没了，有没有余量不足的提醒？", False),
    ("修好了签名以后多久能用？", False),  # no code pasted: nothing to put behind
])
def test_a_message_that_puts_its_pasted_code_behind_it_is_told(tokenizer, message, behind):
    glossary = Glossary.load(__import__("assistant.config", fromlist=["Settings"]).Settings.from_env().glossary_path)
    assert analyse(message, tokenizer, VOCABULARY, glossary).code_behind is behind
