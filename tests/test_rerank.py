"""The second-stage ranker: stored with the build, learned on the tune split only, decisive words, partial matches."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from assistant.decisive import DecisiveWords, compare
from assistant.errors import AssistantError
from assistant.labels import load_queries
from assistant.query_analysis import AnalysedQuery
from assistant.rerank import FEATURES, FOLDER, VERDICTS, Candidate, Memory, Reranker, RerankError, RerankModel
from assistant.search import Searcher, open_searcher


def test_the_build_stores_a_versioned_model_with_its_feature_spec_and_hashes(built, searcher):
    folder = searcher.index.path / FOLDER
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    model = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    assert manifest["model"] is True and manifest["features"] == list(FEATURES) == model["features"]
    assert {"model.txt", "verdict.txt", "model.json", "memory_vectors.npy"} <= set(manifest["files"])
    assert {"rows.jsonl", "sentence_vectors.npy", "sentence_start.npy"} <= set(manifest["arrays"])  # sizes: checked unread
    assert manifest["entries"] == len(searcher.index.entries)
    assert searcher.reranker.model is not None and "lightgbm" in model["info"]["library"]
    assert model["info"]["cv"]["grouped_by"] == "target entry"
    assert 0 < model["abstain_at"] <= 1 and 0 < model["partial_at"] <= 1 and model["verdicts"] == list(VERDICTS)
    assert 0 < model["doubt_at"] <= model["abstain_at"]


def test_a_doubtful_answer_is_quoted_flagged_partial_and_only_a_confident_one_abstains():
    model = RerankModel(booster=None, verdict=None, abstain_at=0.6, partial_at=0.3, doubt_at=0.25)
    assert model.decide({"answer": 0.1, "partial": 0.1, "abstain": 0.8}) == (True, False)
    assert model.decide({"answer": 0.5, "partial": 0.1, "abstain": 0.4}) == (False, True)  # doubt band
    assert model.decide({"answer": 0.5, "partial": 0.4, "abstain": 0.1}) == (False, True)  # topic, not the ask
    assert model.decide({"answer": 0.8, "partial": 0.1, "abstain": 0.1}) == (False, False)


def test_the_model_learned_from_tuning_queries_only(built, searcher):
    queries = load_queries(built.eval_queries_path, searcher.index.entries)
    tune = [q for q in queries if q.split == "tune" and q.usable]
    memory = searcher.reranker.data.memory
    assert len(memory.answers) == len(tune) < len(queries)
    assert [list(q.groups) for q in tune] == memory.answers
    assert searcher.reranker.model.info["trained_on"] == f"tune split, {len(tune)} queries"


@pytest.mark.parametrize("name", ["model.txt", "model.o"])
def test_a_damaged_rerank_file_is_a_typed_error_that_says_rebuild(built, tmp_path, name):
    import dataclasses

    copy = tmp_path / "index"
    shutil.copytree(built.index_dir, copy)
    damaged = dataclasses.replace(built, index_dir=copy)
    build = copy / "builds" / (copy / "current").read_text(encoding="utf-8").strip()
    (build / FOLDER / name).write_text("tree\n", encoding="utf-8")
    with pytest.raises(RerankError, match="faq build") as raised:
        open_searcher(damaged)
    assert isinstance(raised.value, AssistantError)


def test_decisive_words_agree_and_conflict_within_a_facet(settings):
    words = DecisiveWords.load(settings.decisive_path)
    query = words.concepts("已审核通过的签名可以修改吗")
    about_qualifications = words.concepts("已审核通过的资质可以修改吗？")
    about_signatures = words.concepts("短信签名是否可以修改？")
    agree, conflict, missing, names = compare(query, about_qualifications, frozenset())
    assert conflict == 1 and "签名" in names
    agree, conflict, missing, names = compare(query, about_signatures, frozenset())
    assert conflict == 0 and missing == 0 and agree >= 2
    assert {c.name for c in words.concepts("Is calling the API itself charged?")} >= {"接口", "计费"}


def test_features_are_one_row_of_the_spec_per_candidate(searcher):
    analysed, candidates, named = searcher.candidates("how long does signature review take")
    x = searcher.reranker.features(analysed, candidates, named)
    assert x.shape == (len(candidates), len(FEATURES)) and np.isfinite(x).all()


@pytest.mark.parametrize("query, wanted", [
    ("can an approved signature be changed", "签名"),
    ("已审核通过的签名可以修改吗", "签名"),
])
def test_the_decisive_word_picks_the_entry(searcher, query, wanted):
    result = searcher.search(query)
    assert wanted in result.hits[0].entry.question and not result.abstained


def test_the_reranker_reorders_only_its_depth_and_sets_probabilities(searcher):
    analysed, candidates, named = searcher.candidates("短信签名可以修改吗")
    ranked = searcher.reranker.rerank(analysed, list(candidates), named)
    assert sorted(c.group for c in ranked) == sorted(c.group for c in candidates)
    probabilities = [c.probability for c in ranked]
    assert probabilities == sorted(probabilities, reverse=True)


def test_a_covered_topic_with_an_uncovered_ask_is_flagged_partial(searcher):
    entries = searcher.index.entries
    row = next(i for i, e in enumerate(entries) if "个人用户怎么申请签名" in e.question)
    query = AnalysedQuery("企业签名在国际短信里怎么申请", "企业签名在国际短信里怎么申请")
    candidate = Candidate(entries[row].group, [row], 1.0, 0.9, 1.0, 0.0)
    notice = searcher.reranker.partial_notice(query, candidate)
    assert entries[row].question in notice and "国际" in notice
    english = AnalysedQuery("how do companies apply for an international signature", "x")
    english.ask = english.text
    assert searcher.reranker.partial_notice(english, candidate).startswith("The FAQ covers")


def test_the_notice_names_neither_the_code_a_message_puts_behind_it_nor_the_words_that_do(searcher):
    entries = searcher.index.entries
    row = next(i for i, e in enumerate(entries) if "开发票" in e.question)
    message = "InvalidAccessKeyId.NotFound 已经改好了，顺便问一下国际短信能开发票吗"
    query = AnalysedQuery(message, message, identifiers={"invalidaccesskeyid.notfound"}, code_behind=True)
    assert "改好" not in query.ask_words and "顺便" not in query.ask_words
    notice = searcher.reranker.partial_notice(query, Candidate(entries[row].group, [row], 1.0, 0.9, 1.0, 0.0))
    assert "国际" in notice
    assert not any(word in notice.casefold() for word in ("改好", "顺便", "invalid"))


def test_the_verdict_is_a_probability_over_answer_partial_abstain(searcher):
    analysed, candidates, named = searcher.candidates("短信签名可以修改吗")
    verdict = searcher.reranker.judge(searcher.reranker.rerank(analysed, candidates, named))
    assert set(verdict) == set(VERDICTS) and abs(sum(verdict.values()) - 1) < 1e-6
    assert verdict["answer"] > verdict["abstain"]


def test_search_results_always_carry_the_partial_key(searcher):
    data = searcher.search("短信签名可以修改吗").to_json()
    assert "partial" in data and {"query", "abstained", "hits", "confidence"} <= set(data)


def test_a_build_without_labelled_queries_searches_without_a_reranker(tmp_path, cache_dir):
    from assistant.index import build_index
    from helpers import small_settings

    small = small_settings(tmp_path, cache_dir)
    build_index(small, log=lambda message: None)
    searcher = open_searcher(small)
    assert searcher.reranker.model is None
    result = searcher.search("1014错误怎么处理")
    assert "1014" in result.hits[0].entry.question and result.partial is None
    assert isinstance(searcher, Searcher) and isinstance(searcher.reranker, Reranker)


def test_english_search_keys_are_extra_vectors_of_their_chinese_entry(settings, searcher):
    from assistant.aliases import Aliases

    aliases = Aliases.load(settings.aliases_path)
    entries = searcher.index.entries
    keys = sum(len(aliases.of(e)) for e in entries)
    assert len(aliases) > 100 and len(searcher.index.vector_rows) == 2 * len(entries) + keys
    row = next(i for i, e in enumerate(entries) if aliases.of(e) and e.doc == "aliyun-sms-delivery-faq")
    data = searcher.reranker.data
    first, last = data.row_vectors.spans([row])
    keys = searcher.index.vectors.reconstruct_n(int(first[0]) + 2, int(last[0] - first[0]) - 2)
    assert len(keys) == len(aliases.of(entries[row]))
    assert data.row(row).question_tokens > set(data.tokenizer.tokens(entries[row].question))
    result = searcher.search(aliases.of(entries[row])[0])
    assert result.hits[0].entry.group == entries[row].group


def test_an_alias_row_without_english_keys_is_a_corpus_error_naming_the_line(tmp_path):
    from assistant.aliases import Aliases
    from assistant.errors import CorpusError

    path = tmp_path / "aliases.tsv"
    path.write_text("# keys\ngroup\tenglish\tquestion\ng-1\tHow much?\t多少钱\ng-2\t\t空\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"aliases.tsv:4"):
        Aliases.load(path)
    assert len(Aliases.load(tmp_path / "missing.tsv")) == 0


def test_training_features_never_meet_the_query_or_its_fold_in_memory(built, searcher):
    from assistant.glossary import Glossary
    from assistant.rerank_build import collect, memory_folds, remember

    tune = [q for q in load_queries(built.eval_queries_path, searcher.index.entries) if q.split == "tune"
            and q.in_corpus][:60]
    fresh = Reranker.load(searcher.index, Glossary.load(built.glossary_path))
    examples = collect(searcher, tune)
    remember(fresh, examples)
    folds, column = memory_folds(examples), FEATURES.index("memory_answer")
    assert len(set(folds.tolist())) > 1
    for i, e in enumerate(examples):
        own = np.flatnonzero(e.labels)
        if not len(own):
            continue
        seen_all = fresh.features(e.analysed, e.candidates, e.named)[own, column]
        assert np.allclose(seen_all, 1.0, atol=1e-3)  # the query itself, when memory is not out of fold
        assert (e.features[own, column] < 0.999).all()
        alone = fresh.features(e.analysed, e.candidates, e.named, exclude=np.flatnonzero(folds == folds[i]))
        assert np.array_equal(alone, e.features)


def test_memory_left_out_in_training_reads_as_no_labelled_neighbour(searcher):
    analysed, candidates, named = searcher.candidates("短信签名可以修改吗")
    reranker = searcher.reranker
    memory = reranker.data.memory
    columns = [FEATURES.index(f) for f in ("memory_answer", "memory_answer_gap", "memory_near", "memory_unanswered")]
    left_out = reranker.features(analysed, candidates, named, exclude=np.arange(len(memory.answers)))
    reranker.data.memory = Memory.empty(memory.vectors.shape[1])
    try:
        without_memory = reranker.features(analysed, candidates, named)
    finally:
        reranker.data.memory = memory
    assert np.array_equal(left_out, without_memory) and not left_out[:, columns].any()


def test_the_ask_facet_names_what_a_query_asks_for_and_is_never_a_concept(settings):
    words = DecisiveWords.load(settings.decisive_path)
    for query in ("国内短信一条多少钱", "签名审核要几天", "How long does review take?", "What's the daily limit?"):
        assert words.asks(query) == {"amount"}, query
    assert words.asks("短信签名可以修改吗") == frozenset() == words.asks("How do I change a template?")
    assert all(concept.facet != "ask" for concept in words.concepts("国内短信一条多少钱，上限多少"))


def _candidate(entries, question_part):
    row = next(i for i, e in enumerate(entries) if question_part in e.question)
    return Candidate(entries[row].group, [row], 1.0, 0.9, 1.0, 0.0)


def test_an_amount_asked_of_an_entry_that_states_no_number_is_a_feature(searcher):
    entries = searcher.index.entries
    no_price = _candidate(entries, "国内短信、国际/港澳台短信计费方式是什么")
    lengths = _candidate(entries, "多少个字算一条短信")
    columns = [FEATURES.index(f) for f in ("asks_amount", "amount_unstated", "amount_unasked")]
    analysed, _, named = searcher.candidates("国内短信一条多少钱")
    x = searcher.reranker.features(analysed, [no_price, lengths], named)
    assert x[:, columns].tolist() == [[1, 1, 0], [1, 0, 0]]
    analysed, _, named = searcher.candidates("长短信怎么计费")
    x = searcher.reranker.features(analysed, [no_price, lengths], named)
    assert x[:, columns].tolist() == [[0, 0, 0], [0, 0, 1]]  # the second entry's question asks an amount


def test_an_entry_narrower_than_the_query_is_a_feature(searcher):
    """The voice entry names a kind (语音) and a limit (频率); a plain frequency question names only the limit."""
    entries = searcher.index.entries
    voice = _candidate(entries, "语音频率限制策略是什么")
    plain = _candidate(entries, "短信默认的频率限制是什么")
    column = FEATURES.index("question_narrower")
    analysed, _, named = searcher.candidates("频率限制是多少")
    x = searcher.reranker.features(analysed, [voice, plain], named)
    assert x[:, column].tolist() == [1, 0]
    analysed, _, named = searcher.candidates("语音的频率限制是多少")
    x = searcher.reranker.features(analysed, [voice, plain], named)
    assert x[:, column].tolist() == [0, 0]


def test_the_characters_a_query_shares_with_a_question_as_written_are_a_feature(searcher):
    """"流控限制是什么" is worded as 什么是短信发送流控限制; its near duplicate (可以取消…吗) shares fewer pairs."""
    entries = searcher.index.entries
    definition = _candidate(entries, "什么是短信发送流控限制")
    cancel = _candidate(entries, "短信服务可以取消流控限制吗")
    columns = [FEATURES.index(f) for f in ("pairs_dice", "question_pairs_held", "pairs_dice_place",
                                           "question_pairs_held_place")]
    analysed, _, named = searcher.candidates("流控限制是什么")
    (dice_d, held_d, *places_d), (dice_c, held_c, *places_c) = searcher.reranker.features(
        analysed, [definition, cancel], named)[:, columns].tolist()
    assert dice_d > dice_c > 0 and held_d > held_c > 0
    assert places_d == [0, 0] and places_c == [1, 1]


def test_the_share_of_the_query_the_corpus_does_not_know_is_a_feature(searcher):
    columns = [FEATURES.index("unknown_share"), FEATURES.index("unknown_count")]

    def unknown(query):
        analysed, candidates, named = searcher.candidates(query)
        x = searcher.reranker.features(analysed, candidates, named)
        assert (x[:, columns] == x[0, columns]).all()  # a property of the query, alike for every candidate
        return x[0, columns].tolist()

    assert unknown("短信签名可以修改吗") == [0.0, 0.0]
    assert unknown("how do I change a signature") == [0.0, 0.0]  # English known through the glossary
    share, count = unknown("短信签名可以修改吗 量子纠缠望远镜")
    assert 0 < share < 1 and count >= 1


def test_question_and_search_key_vectors_are_read_from_the_store_for_the_rows_asked_only(searcher):
    from assistant.rerank import KEYS_FROM, RowVectors, cosines

    index = searcher.index
    every = index.vectors.reconstruct_n(0, index.vectors.ntotal)
    rows = np.asarray(index.vector_rows)
    asked = []
    reconstruct = index.vectors.reconstruct_batch

    class Spy:  # the build's vector file, recording which positions are read
        d = index.vectors.d

        def reconstruct_batch(self, positions):
            asked.append(np.asarray(positions).tolist())
            return reconstruct(positions)

    data = searcher.reranker.data
    data.row_vectors = RowVectors(type("Source", (), {"vectors": Spy(), "vector_rows": index.vector_rows})())
    try:
        with_keys = np.flatnonzero(np.bincount(rows) > KEYS_FROM + 1)[:2]
        wanted = np.array([120, 3, 77, *with_keys])
        vector = every[5]
        dense = data.dense_question(wanted, vector, np.isin(wanted, with_keys))
    finally:
        data.row_vectors = RowVectors(index)
    own = [np.flatnonzero(rows == r) for r in wanted]
    read = [p[[0, *range(KEYS_FROM, len(p))]] if r in with_keys else p[:1] for r, p in zip(wanted, own)]
    assert sorted(sum(asked, [])) == sorted(int(p) for positions in read for p in positions)
    assert np.allclose(dense, [max(cosines(every[positions], vector)) for positions in read])


def test_the_editions_of_a_group_share_their_search_key_vectors(searcher):
    """The reranker reads one member's keys for its group (RerankData.dense_question)."""
    from assistant.rerank import KEYS_FROM

    index, store = searcher.index, searcher.index.store
    vectors = index.vectors.reconstruct_n(0, index.vectors.ntotal)
    rows = np.asarray(index.vector_rows)
    groups = store.group_of(np.arange(len(index.entries)))
    shared = 0
    for group in np.unique(groups).tolist():
        members = np.flatnonzero(groups == group)
        keys = [vectors[np.flatnonzero(rows == r)[KEYS_FROM:]] for r in members]
        assert all(np.array_equal(k, keys[0]) for k in keys[1:]), members
        shared += len(members) > 1 and len(keys[0]) > 0
    assert shared >= 10
