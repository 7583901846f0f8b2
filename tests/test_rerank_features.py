"""The reranker's features read only the candidates' rows of what the build stored, yet equal a plain
reading of the whole corpus.

`PlainCorpus` reads every entry as it is (its tokens, decisive words, numbers and identifiers, a bm25s model
indexed afresh over each field) and `reference_features` scores every entry (every answer sentence and search
key, one dot product each) and then reads the candidates' values, one feature at a time, in plain loops. The
fast `Reranker.features` must give the same matrix on labelled queries of the real build: exactly, but for
the dense cosines, whose sums may round in another order (within 1e-9).
"""

from __future__ import annotations

import bm25s
import numpy as np
import pytest

from assistant.aliases import Aliases
from assistant.decisive import compare
from assistant.labels import load_queries
from assistant.rerank import FEATURES, FOLDER, NUMBER_RE, RANKED_FEATURES
from assistant.text import bigrams, containment, dice
from assistant.tokenize import corpus_identifiers, normalize, without_identifiers

SAMPLE_EVERY = 12  # labelled queries: every 12th, so every kind and language is met
DENSE = [FEATURES.index(name) for name in ("dense_question", "dense_sentence", "dense_sentence_gap")]


class PlainCorpus:
    """Every entry read from its text, and the build's item vectors read whole."""

    def __init__(self, searcher, aliases: Aliases) -> None:
        d = searcher.reranker.data
        entries = list(d.entries)
        tokens = d.tokenizer.tokens
        questions = [tokens(e.question) + tokens(" ".join(aliases.of(e))) for e in entries]
        answers = [tokens(e.answer) for e in entries]
        self.question_tokens = [set(q) for q in questions]
        self.answer_tokens = [set(a) for a in answers]
        self.bm25_question, self.bm25_answer = (self._bm25(lists) for lists in (questions, answers))
        self.question_concepts = [d.decisive.concepts(e.question) for e in entries]
        self.answer_concepts = [d.decisive.concepts(e.answer) for e in entries]
        self.numbers = [set(NUMBER_RE.findall(normalize(e.question + " " + e.answer))) for e in entries]
        self.question_asks = [d.decisive.asks(e.question) for e in entries]
        self.question_ids = [corpus_identifiers([e.question]) for e in entries]
        self.entry_ids = [q | corpus_identifiers([e.answer]) for q, e in zip(self.question_ids, entries)]
        folder = searcher.index.path / FOLDER
        index = searcher.index
        every = index.vectors.reconstruct_n(0, index.vectors.ntotal)
        rows = np.asarray(index.vector_rows)
        # a row's store vectors: its question, question + answer, then its search keys
        self.questions = {int(r): every[np.flatnonzero(rows == r)[0]] for r in np.unique(rows)}
        key_counts = np.maximum(np.bincount(rows, minlength=len(entries)) - 2, 0)
        key_vectors = np.concatenate([every[np.flatnonzero(rows == r)[2:]] for r in range(len(entries))])
        self.items = {"sentence": (np.load(folder / "sentence_vectors.npy"), np.load(folder / "sentence_start.npy")),
                      "key": (key_vectors, np.concatenate([[0], np.cumsum(key_counts)]))}

    @staticmethod
    def _bm25(token_lists):
        model = bm25s.BM25()
        model.index([tokens or ["<empty>"] for tokens in token_lists], show_progress=False)
        return model

    def best_item(self, kind: str, row: int, vector: np.ndarray, floor: float) -> float:
        vectors, starts = self.items[kind]
        query = vector.astype(np.float64)
        return max([floor] + [float(np.dot(vectors[j].astype(np.float64), query))
                              for j in range(starts[row], starts[row + 1])])


@pytest.fixture(scope="module")
def plain(searcher, settings):
    return PlainCorpus(searcher, Aliases.load(settings.aliases_path))


def reference_features(reranker, plain, query, candidates, vendor_named, exclude=None) -> np.ndarray:
    d = reranker.data
    n = len(d.entries)
    vector = query.vector
    p = plain

    recalled = d.memory.vectors @ vector if len(d.memory.vectors) else np.zeros(0)
    if exclude is not None and len(recalled):
        recalled[exclude] = 0.0

    def recall(group, table):
        return max((float(recalled[i]) for i in table.get(group, [])), default=0.0)

    unanswered = max([0.0] + [float(s) for s, u in zip(recalled, d.memory.unanswered) if u])
    memory_answer = [recall(c.group, d.memory.by_answer) for c in candidates]

    units = d.query_units(query.ask_words)
    total = sum(w for _, w, _ in units) or 1.0
    tokens = [t for t, _, _ in units]

    def bm25_of_every_entry(model):
        known = [t for t in tokens if t in model.vocab_dict]
        return np.asarray(model.get_scores(known), dtype=np.float64) if known else np.zeros(n)

    bm25_question, bm25_answer = bm25_of_every_entry(p.bm25_question), bm25_of_every_entry(p.bm25_answer)
    rows_all = sorted({r for c in candidates for r in c.rows})
    question = {r: float(np.dot(p.questions[r].astype(np.float64), vector.astype(np.float64)))
                for r in rows_all}
    sentence_best = [p.best_item("sentence", r, vector, 0.0) for r in range(n)]
    question_best = {r: p.best_item("key", r, vector, question[r]) for r in rows_all}

    top_bm25_question = max(max(float(bm25_question[r]) for r in rows_all), 1e-9)
    top_bm25_answer = max(max(float(bm25_answer[r]) for r in rows_all), 1e-9)
    top_sentence = max(sentence_best[r] for r in rows_all)
    concepts = d.decisive.concepts(query.ask_words + " " + " ".join(query.expansions))
    numbers = set(NUMBER_RE.findall(normalize(query.ask_words))) - query.identifiers
    asks_amount = "amount" in d.decisive.asks(query.ask_words)
    unknown = [w for t, w, alt in units if not any(a in d.idf for a in alt)]
    unknown_share = sum(unknown) / sum(w for _, w, _ in units) if units else 0.0

    focus_units = d.query_units(query.focus)
    beside_units = d.query_units(without_identifiers(query.ask_words, query.identifiers)) if query.identifiers else units
    focus_concepts = d.decisive.concepts(query.focus + " " + " ".join(query.expansions))

    def row_evidence(r, units=units, concepts=concepts):
        total = sum(w for _, w, _ in units) or 1.0
        question, anywhere = p.question_tokens[r], p.question_tokens[r] | p.answer_tokens[r]
        cover_question = sum(w for _, w, alt in units if alt & question) / total
        cover_any = sum(w for _, w, alt in units if alt & anywhere) / total
        rarest = max([0.0] + [w for _, w, alt in units if not alt & anywhere]) / d.unknown_idf
        agree, conflict, missing, _ = compare(concepts, p.question_concepts[r], p.answer_concepts[r])
        return cover_question, cover_any, agree, conflict, missing, rarest, len(numbers - p.numbers[r])

    def best_row(rows, evidence):
        best = rows[0]
        for r in rows[1:]:
            key = (evidence[r][0], evidence[r][2] - evidence[r][3] - evidence[r][4])
            if key > (evidence[best][0], evidence[best][2] - evidence[best][3] - evidence[best][4]):
                best = r
        return best

    top_fused = max(c.fused for c in candidates) or 1e-9
    top_dense = max(c.dense for c in candidates)
    matrix, beside = [], []
    for i, c in enumerate(candidates):
        evidence = {r: row_evidence(r) for r in c.rows}
        best = best_row(c.rows, evidence)
        beside_question, beside_any, *_ = row_evidence(best, beside_units)
        beside.append([beside_question, 1.0 - beside_any])
        cover_question, cover_any, agree, conflict, missing, rarest, numbers_missing = evidence[best]
        narrower = len({k.facet for k in p.question_concepts[best]} - {k.facet for k in concepts})
        focus = {r: row_evidence(r, focus_units, focus_concepts) for r in c.rows}
        focus_question, focus_any, focus_agree, focus_conflict, focus_missing, _, _ = focus[best_row(c.rows, focus)]
        ids_question = max(len(query.identifiers & p.question_ids[r]) for r in c.rows)
        ids_any = max(len(query.identifiers & p.entry_ids[r]) for r in c.rows)
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
            float(bool(query.identifiers) and ids_any == 0 and any(p.question_ids[r] for r in c.rows)),
            query.offtopic_margin, float(query.english), float(query.is_long),
            memory_answer[i], memory_answer[i] - max(memory_answer), recall(c.group, d.memory.by_near), unanswered,
            focus_question, focus_any - focus_question, 1.0 - focus_any, focus_agree, focus_conflict, focus_missing,
            float(asks_amount), float(asks_amount and not any(p.numbers[r] for r in c.rows)),
            float(not asks_amount and any("amount" in p.question_asks[r] for r in c.rows)), float(narrower),
            unknown_share, float(len(unknown)),
        ])
    def place(columns, i, k):  # how many candidates come before, by value then by position
        return sum(1 for j, other in enumerate(columns) if other[k] > columns[i][k] or (other[k] == columns[i][k] and j < i))

    ranked = [FEATURES.index(name) for name in RANKED_FEATURES]
    plain = [list(row) for row in matrix]
    asked = bigrams(query.text)
    surface = [[max(dice(asked, bigrams(d.entries[r].question)) for r in c.rows),
                max(containment(bigrams(d.entries[r].question), asked) for r in c.rows)] for c in candidates]
    for i, row in enumerate(matrix):
        row.extend(place(plain, i, k) for k in ranked)
        row.extend(surface[i])
        row.extend(place(surface, i, k) for k in range(2))
        row.extend(beside[i])
        row.append(float(query.code_behind and candidates[i].exact > 0))
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


def assert_same_features(fast: np.ndarray, slow: np.ndarray, query: str) -> None:
    exact = np.ones(len(FEATURES), dtype=bool)
    exact[DENSE] = False
    differ = (fast[:, exact] != slow[:, exact]).any(0)
    assert not differ.any(), f"{query!r}: {np.array(FEATURES)[exact][differ].tolist()}"
    assert np.allclose(fast[:, DENSE], slow[:, DENSE], rtol=0, atol=1e-9), query


def test_the_fast_features_equal_the_reference(searcher, plain, sampled):
    assert len(FEATURES) == 59  # a new feature needs its plain reading in `reference_features` too
    for labelled, analysed, candidates, named in sampled:
        fast = searcher.reranker.features(analysed, candidates, named)
        assert_same_features(fast, reference_features(searcher.reranker, plain, analysed, candidates, named),
                             labelled.query)


def test_memory_left_out_of_fold_is_left_out_alike(searcher, plain, sampled):
    memory = len(searcher.reranker.data.memory.vectors)
    left_out = np.arange(0, memory, 3)
    for labelled, analysed, candidates, named in sampled[:20]:
        fast = searcher.reranker.features(analysed, candidates, named, exclude=left_out)
        slow = reference_features(searcher.reranker, plain, analysed, candidates, named, left_out)
        assert_same_features(fast, slow, labelled.query)
