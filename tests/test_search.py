"""Search over the bundled corpus: channels, fusion, editions, filters, abstention, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.search import MAX_QUERY_CHARS, QueryError, Searcher


def top(result):
    return result.hits[0].entry


def test_exact_channel_finds_error_codes_and_api_names_alone(searcher):
    exact_only = Searcher(searcher.index, searcher.embedder, searcher.glossary, channels=("exact",))
    result = exact_only.search("60008")
    assert "60008" in top(result).question
    assert result.hits[0].channels == ["exact"]
    name = exact_only.search("failedoperation.templateincorrectorunapproved")  # case folded
    assert "FailedOperation.TemplateIncorrectOrUnapproved" in top(name).question
    assert exact_only.channel_scores("没有标识符的问题").exact.max(initial=0) == 0


def test_bm25_channel_matches_domain_words_and_expands_english(searcher):
    bm25_only = Searcher(searcher.index, searcher.embedder, searcher.glossary, channels=("bm25",))
    assert "免打扰名单" in top(bm25_only.search("免打扰名单")).question
    # "dnd" is in no entry: the glossary adds 免打扰名单/黑名单.
    english = bm25_only.channel_scores("what is dnd")
    assert english.bm25.max(initial=0) > 0
    unexpanded = Searcher(searcher.index, searcher.embedder, searcher.glossary, channels=("bm25",), expand=False)
    assert unexpanded.channel_scores("what is dnd").bm25.max(initial=0) == 0


def test_dense_channel_finds_chinese_entries_for_english_questions(searcher):
    dense_only = Searcher(searcher.index, searcher.embedder, searcher.glossary, channels=("dense",))
    result = dense_only.search("Can I get an invoice?")
    assert top(result).question == "是否可以开发票？"
    assert result.hits[0].channels == ["dense"]


def test_fused_search_puts_the_exact_code_first_and_names_its_channels(searcher):
    result = searcher.search("返回1014错误怎么办")
    assert "1014" in top(result).question
    assert set(result.hits[0].channels) == {"exact", "bm25", "dense"}
    assert not result.abstained
    scores = [hit.score for hit in result.hits]
    assert scores == sorted(scores, reverse=True)


def test_a_code_pasted_as_the_background_of_another_ask_gets_that_ask_answered(searcher):
    result = searcher.search("报了1033，欠款已经补上了，发票去哪里开？")
    assert top(result).question == "是否可以开发票？"
    assert not result.abstained


def test_a_known_code_under_filters_that_hide_every_entry_carrying_it_abstains(searcher):
    assert searcher.search("1031余额不足怎么办", vendor="aliyun").abstained
    assert not searcher.search("1031余额不足怎么办").abstained


@pytest.mark.parametrize("fusion", ["score", "rrf"])
def test_both_fusions_rank_a_paraphrase_first(searcher, fusion):
    fused = Searcher(searcher.index, searcher.embedder, searcher.glossary, fusion=fusion)
    assert top(fused.search("签名申请被拒绝了怎么办")).question == "签名申请被驳回怎么办？"


def test_one_hit_per_edition_group_showing_the_newest_edition(searcher):
    result = searcher.search("返回1014错误如何处理", top_k=10)
    groups = [hit.entry.group for hit in result.hits]
    assert len(groups) == len(set(groups))
    hit = result.hits[0]
    assert hit.entry.doc == "tencent-sms-faq-2025-pdf"
    data = hit.to_json()
    assert [e["doc"] for e in data["editions"]][0] == "tencent-sms-faq-2025-pdf"
    assert len(data["editions"]) == 5  # four Chinese editions and the English page
    assert any(e["answer_changed"] for e in data["editions"])


def test_edition_all_lists_every_edition_ungrouped(searcher):
    result = searcher.search("返回1014错误如何处理", top_k=6, edition="all")
    docs = [hit.entry.doc for hit in result.hits if "1014" in hit.entry.question]
    assert len(docs) == 5 and len(set(docs)) == 5


def test_a_given_edition_and_a_vendor_restrict_the_hits(searcher):
    old = searcher.search("返回1014错误如何处理", top_k=5, edition="tencent-sms-faq-2018-pdf")
    assert {hit.entry.doc for hit in old.hits} == {"tencent-sms-faq-2018-pdf"}
    aliyun = searcher.search("短信状态一直显示发送中", top_k=5, vendor="aliyun")
    assert {hit.entry.vendor for hit in aliyun.hits} == {"aliyun"}
    assert "发送中" in top(aliyun).question


def test_a_query_naming_a_vendor_prefers_that_vendor(searcher):
    assert top(searcher.search("阿里云 短信状态一直显示发送中")).vendor == "aliyun"
    assert top(searcher.search("腾讯云 短信状态一直显示发送中")).vendor == "tencent"


@pytest.mark.parametrize(
    "query",
    ["今天天气怎么样", "How do I reset my password?", "CDN加速怎么配置", "写一首关于大海的诗", "What's the capital of France?"],
)
def test_out_of_corpus_questions_abstain_but_keep_possibly_related_hits(searcher, query):
    result = searcher.search(query)
    assert result.abstained
    assert result.hits  # shown as "possibly related"


@pytest.mark.parametrize(
    "query", ["用户收不到短信怎么办", "How many SMS signatures can I have?", "60008", "短信能撤回吗", "国际短信欠费了会怎样"]
)
def test_in_corpus_questions_are_answered(searcher, query):
    assert not searcher.search(query).abstained


@pytest.mark.parametrize("query", ["", "   ", "\u200b\u3000", None])
def test_empty_queries_raise_a_typed_value_error(searcher, query):
    with pytest.raises(QueryError) as raised:
        searcher.search(query)
    assert isinstance(raised.value, ValueError)
    assert "empty" in str(raised.value)


@pytest.mark.parametrize("top_k", [0, -1, 51, 10**9])
def test_top_k_out_of_bounds_is_refused(searcher, top_k):
    with pytest.raises(QueryError, match="top-k"):
        searcher.search("签名", top_k=top_k)


def test_unknown_filters_list_the_valid_values(searcher):
    with pytest.raises(QueryError, match="aliyun, tencent"):
        searcher.search("签名", vendor="huawei")
    with pytest.raises(QueryError, match="tencent-sms-faq-2018-pdf"):
        searcher.search("签名", edition="1999")


def test_a_huge_query_is_truncated_with_a_notice(searcher):
    result = searcher.search("短信签名被驳回怎么办" * 1000)
    assert len(result.query) == MAX_QUERY_CHARS
    assert result.notices and "10000" in result.notices[0]
    assert result.hits


@pytest.mark.parametrize("context", ["你好，" * 3000, "2026-12-01 10:00:01 INFO send ok phone=138****0000\n" * 150])
def test_the_ask_at_the_end_of_a_long_message_is_searched(searcher, context):
    result = searcher.search(context + "请问短信签名能修改吗？")
    assert len(context) > 4 * MAX_QUERY_CHARS
    assert "短信签名能修改吗" in result.query
    assert result.notices and str(len(context) + 11) in result.notices[0]


@pytest.mark.parametrize("query", ["🙂🙂🙂", "签名\u200b被驳回", "ＳＭＳ　签名", "\x00\x07签名", "é̂̂̂", "𠀀𠀁"])
def test_odd_unicode_never_crashes(searcher, query):
    result = searcher.search(query)
    assert np.isfinite(result.confidence)


def test_fullwidth_digits_match_error_codes(searcher):
    assert "1014" in top(searcher.search("返回１０１４")).question
