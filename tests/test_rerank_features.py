"""The reranker's features read only the candidates' rows, yet equal a plain reading of the whole corpus.

`reference_features` scores every entry (bm25s over the whole field, each entry's best answer sentence and
search key) and then reads the candidates' values, one feature at a time, in plain loops. The fast
`Reranker.features` must give exactly the same matrix on labelled queries of the real build.
"""

from __future__ import annotations

import numpy as np
import pytest

from assistant.decisive import compare
from assistant.labels import load_queries
from assistant.rerank import FEATURES, NUMBER_RE, RANKED_FEATURES
from assistant.tokenize import normalize

SAMPLE_EVERY = 12  # labelled queries: every 12th, so every kind and language is met


def reference_features(reranker, query, candidates, vendor_named, exclude=None) -> np.ndarray:
    d = reranker.data
    n = len(d.entries)
    vector = query.vector

    recalled = d.memory.vectors @ vector if len(d.memory.vectors) else np.zeros(0)
    if exclude is not None and len(recalled):
        recalled[exclude] = 0.0

    def recall(group, table):
        return max((float(recalled[i]) for i in table.get(group, [])), default=0.0)

    unanswered = max([0.0] + [float(s) for s, u in zip(recalled, d.memory.unanswered) if u])
    memory_answer = [recall(c.group, d.memory.by_answer) for c in candidates]

    units = d.query_units(query.ask)
    total = sum(w for _, w, _ in units) or 1.0
    tokens = [t for t, _, _ in units]

    def bm25_of_every_entry(model):
        known = [t for t in tokens if t in model.vocab_dict]
        return np.asarray(model.get_scores(known), dtype=np.float64) if known else np.zeros(n)

    bm25_question, bm25_answer = bm25_of_every_entry(d.bm25_question), bm25_of_every_entry(d.bm25_answer)
    every_sentence = d.sentence_vectors @ vector
    every_key = d.key_vectors @ vector
    rows_all = sorted({r for c in candidates for r in c.rows})
    candidate_question = dict(zip(rows_all, d.question_vectors[rows_all] @ vector))  # as one product, as served
    sentence_best = [max([0.0] + [float(every_sentence[j]) for j in range(len(every_sentence))
                                  if d.sentence_rows[j] == r]) for r in range(n)]
    question_best = {r: max([float(candidate_question[r])] + [float(every_key[j]) for j in range(len(every_key))
                                                             if d.key_rows[j] == r]) for r in rows_all}

    top_bm25_question = max(max(float(bm25_question[r]) for r in rows_all), 1e-9)
    top_bm25_answer = max(max(float(bm25_answer[r]) for r in rows_all), 1e-9)
    top_sentence = max(sentence_best[r] for r in rows_all)
    concepts = d.decisive.concepts(query.ask + " " + " ".join(query.expansions))
    numbers = set(NUMBER_RE.findall(normalize(query.ask))) - query.identifiers
    asks_amount = "amount" in d.decisive.asks(query.ask)
    unknown = [w for t, w, alt in units if not any(a in d.idf for a in alt)]
    unknown_share = sum(unknown) / sum(w for _, w, _ in units) if units else 0.0

    def row_evidence(r):
        question, anywhere = d.question_tokens[r], d.question_tokens[r] | d.answer_tokens[r]
        cover_question = sum(w for _, w, alt in units if alt & question) / total
        cover_any = sum(w for _, w, alt in units if alt & anywhere) / total
        rarest = max([0.0] + [w for _, w, alt in units if not alt & anywhere]) / d.unknown_idf
        agree, conflict, missing, _ = compare(concepts, d.question_concepts[r], d.answer_concepts[r])
        return cover_question, cover_any, agree, conflict, missing, rarest, len(numbers - d.numbers[r])

    top_fused = max(c.fused for c in candidates) or 1e-9
    top_dense = max(c.dense for c in candidates)
    matrix = []
    for i, c in enumerate(candidates):
        evidence = {r: row_evidence(r) for r in c.rows}
        best = c.rows[0]
        for r in c.rows[1:]:
            key = (evidence[r][0], evidence[r][2] - evidence[r][3] - evidence[r][4])
            if key > (evidence[best][0], evidence[best][2] - evidence[best][3] - evidence[best][4]):
                best = r
        cover_question, cover_any, agree, conflict, missing, rarest, numbers_missing = evidence[best]
        ids_question = max(len(query.identifiers & d.question_ids[r]) for r in c.rows)
        ids_any = max(len(query.identifiers & d.entry_ids[r]) for r in c.rows)
        vendor = d.entries[c.shown].vendor
        sentence = max(sentence_best[r] for r in c.rows)
        matrix.append([
            c.fused / top_fused, 1.0 / (i + 1), c.dense, c.dense - top_dense,
            max(question_best[r] for r in c.rows), sentence, sentence - top_sentence,
            max(float(bm25_question[r]) / top_bm25_question for r in c.rows),
            max(float(bm25_answer[r]) / top_bm25_answer for r in c.rows),
            cover_question, cover_any - cover_question, 1.0 - cover_any,
            agree, conflict, missing, rarest, numbers_missing,
            float(vendor_named == vendor), float(vendor_named is not None and vendor_named != vendor),
            float(ids_question > 0), float(c.exact > 0),
            float(bool(query.identifiers) and ids_any == 0 and any(d.question_ids[r] for r in c.rows)),
            query.offtopic_margin, float(query.english), float(query.is_long),
            memory_answer[i], memory_answer[i] - max(memory_answer), recall(c.group, d.memory.by_near), unanswered,
            float(asks_amount), float(asks_amount and not any(d.numbers[r] for r in c.rows)),
            float(not asks_amount and any("amount" in d.decisive.asks(d.entries[r].question) for r in c.rows)),
            unknown_share, float(len(unknown)),
        ])
    ranked = [FEATURES.index(name) for name in RANKED_FEATURES]
    plain = [list(row) for row in matrix]
    for i, row in enumerate(matrix):  # place: how many candidates come before, by value then by position
        row.extend(sum(1 for j, other in enumerate(plain) if other[k] > plain[i][k] or (other[k] == plain[i][k] and j < i))
                   for k in ranked)
    return np.array(matrix, dtype=np.float64)


@pytest.fixture(scope="module")
def sampled(built, searcher):
    queries = load_queries(built.eval_queries_path, searcher.index.entries)[::SAMPLE_EVERY]
    found = []
    for labelled in queries:
        analysed, candidates, named = searcher.candidates(labelled.query)
        if candidates:
            found.append((labelled, analysed, candidates[: searcher.reranker_depth], named))
    return found


def test_the_sample_meets_every_kind_of_query(sampled):
    assert len(sampled) >= 80
    assert {q.lang for q, *_ in sampled} >= {"zh", "en"} and any(a.is_long for _, a, _, _ in sampled)
    assert any(a.identifiers for _, a, _, _ in sampled) and any(n for *_, n in sampled)


def test_the_fast_features_equal_the_reference_exactly(searcher, sampled):
    assert len(FEATURES) == 41  # a new feature needs its plain reading in `reference_features` too
    for labelled, analysed, candidates, named in sampled:
        fast = searcher.reranker.features(analysed, candidates, named)
        slow = reference_features(searcher.reranker, analysed, candidates, named)
        assert np.array_equal(fast, slow), f"{labelled.query!r}: {FEATURES[int(np.argmax((fast != slow).any(0)))]}"


def test_memory_left_out_of_fold_is_left_out_alike(searcher, sampled):
    memory = len(searcher.reranker.data.memory.vectors)
    left_out = np.arange(0, memory, 3)
    for _, analysed, candidates, named in sampled[:20]:
        fast = searcher.reranker.features(analysed, candidates, named, exclude=left_out)
        assert np.array_equal(fast, reference_features(searcher.reranker, analysed, candidates, named, left_out))
