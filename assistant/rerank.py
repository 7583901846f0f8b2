"""Second-stage ranking over the fused candidates, with evidence the single channels do not see.

Per candidate edition group: which of the query's words its *question* covers versus only its
answer; decisive words (corpus/decisive.tsv) agreeing or conflicting; dense similarity to the
question alone and to the best single answer sentence; BM25 on the question and answer fields;
vendor named; exact identifiers; whether the query asks for an amount (a price, count, limit or
duration) and the entry states no number; how much of the query the corpus does not know. A model
learned on the tuning split at build time (assistant/rerank_build.py) turns them into the probability
that the candidate answers the query; that probability also decides abstention, and a covered topic
with an uncovered ask, or a doubtful answer short of abstention, is flagged partial. The model and its inputs live in the build's `rerank/` folder.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import bm25s
import numpy as np

from assistant.decisive import DecisiveWords, compare
from assistant.entry import FaqEntry
from assistant.errors import AssistantError
from assistant.glossary import Glossary
from assistant.query_analysis import AnalysedQuery
from assistant.tokenize import Tokenizer, corpus_identifiers, excluded_identifiers, normalize

MODEL_VERSION = 8
DEPTH = 30  # candidates the reranker sees
CANDIDATE_FEATURES = (
    "fused_rel", "fused_rank_inv", "dense", "dense_gap", "dense_question", "dense_sentence", "dense_sentence_gap",
    "bm25_question", "bm25_answer", "cover_question", "cover_answer_only", "uncovered",
    "decisive_agree", "decisive_conflict", "decisive_missing", "uncovered_rarest", "numbers_missing",
    "vendor_match", "vendor_other",
    "exact_question", "exact_any", "identifier_conflict", "offtopic_margin", "english", "long",
    "memory_answer", "memory_answer_gap", "memory_near", "memory_unanswered",
)
ASK_FEATURES = ("asks_amount", "amount_unstated", "amount_unasked")
UNKNOWN_FEATURES = ("unknown_share", "unknown_count")
# Overlapping entries ("短信价格" beside "国内计费策略") differ by a little in each feature, and a tree sees
# one candidate at a time: these give each candidate's place among the list's on the features that
# separate them (0 = the best). Grouped CV on tune, three fold seeds: R@1 0.912 → 0.918 on average.
RANKED_FEATURES = ("dense_question", "cover_question", "uncovered", "decisive_agree", "decisive_missing",
                   "bm25_answer", "memory_near")
PLACE_FEATURES = tuple(f"{name}_place" for name in RANKED_FEATURES)
FEATURES = CANDIDATE_FEATURES + ASK_FEATURES + UNKNOWN_FEATURES + PLACE_FEATURES
RANKED_COLUMNS = [CANDIDATE_FEATURES.index(name) for name in RANKED_FEATURES]
AMOUNT = "amount"  # the ask kind of corpus/decisive.tsv: a price, count, limit or duration
FOLDER = "rerank"
FILES = ("fields.json", "sentence_vectors.npy", "sentence_rows.npy", "key_vectors.npy", "key_rows.npy", "memory.json",
         "memory_vectors.npy", "model.json", "model.txt", "verdict.txt")
NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")
VERDICTS = ("answer", "partial", "abstain")


def places(columns: np.ndarray) -> np.ndarray:
    """Each row's place in each column, highest value first (0), ties in row order."""
    order = np.argsort(-columns, axis=0, kind="stable")
    return np.argsort(order, axis=0, kind="stable").astype(np.float64)


class RerankError(AssistantError):
    """The build's rerank folder is missing or damaged; rebuild the index."""


@dataclass
class Candidate:
    """One edition group among the fused results."""

    group: str
    rows: list[int]  # member entry rows, newest edition first
    fused: float
    dense: float
    bm25: float
    exact: float
    probability: float | None = None  # set by the reranker
    features: np.ndarray | None = None

    @property
    def shown(self) -> int:
        return self.rows[0]


def verdict_row(probabilities: list[float], top_features: np.ndarray) -> np.ndarray:
    """What the verdict model sees of one search: the best two probabilities and the best candidate's features."""
    first = probabilities[0] if probabilities else 0.0
    second = probabilities[1] if len(probabilities) > 1 else 0.0
    return np.concatenate([[first, second, first - second], top_features])


@dataclass
class RerankModel:
    """Two LightGBM models (stored as their text models): does a candidate answer the query, and, over
    the best candidate, is the search an answer, a partial match or nothing; thresholds set on the tune split."""

    booster: object  # lightgbm.Booster, binary: candidate answers the query
    verdict: object  # lightgbm.Booster, multiclass over VERDICTS
    abstain_at: float  # P(abstain) at or above: abstain
    partial_at: float  # P(partial) at or above: flag partial
    doubt_at: float  # P(abstain) at or above, below abstain_at: answer, flagged partial
    info: dict = field(default_factory=dict)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return self.booster.predict(x, num_threads=1)

    def judge(self, row: np.ndarray) -> dict[str, float]:
        return dict(zip(VERDICTS, self.verdict.predict(row[None, :], num_threads=1)[0].tolist()))

    def decide(self, verdict: dict[str, float]) -> tuple[bool, bool]:
        """(abstain, flag partial): a doubtful answer is quoted with a notice rather than withheld."""
        abstain = verdict["abstain"] >= self.abstain_at
        partial = not abstain and (verdict["partial"] >= self.partial_at or verdict["abstain"] >= self.doubt_at)
        return abstain, partial

    def to_json(self) -> dict:
        return {"version": MODEL_VERSION, "features": list(FEATURES), "verdicts": list(VERDICTS),
                "abstain_at": self.abstain_at, "partial_at": self.partial_at, "doubt_at": self.doubt_at,
                "info": self.info}

    @classmethod
    def load(cls, folder) -> "RerankModel":
        import lightgbm

        data = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        if data.get("version") != MODEL_VERSION or data.get("features") != list(FEATURES):
            raise RerankError("the rerank model was trained with other features: rebuild with `faq build`")
        booster = lightgbm.Booster(model_str=(folder / "model.txt").read_text(encoding="utf-8"))
        verdict = lightgbm.Booster(model_str=(folder / "verdict.txt").read_text(encoding="utf-8"))
        if booster.num_feature() != len(FEATURES) or verdict.num_feature() != len(FEATURES) + 3:
            raise RerankError("the rerank model does not match its feature spec: rebuild with `faq build`")
        return cls(booster, verdict, float(data["abstain_at"]), float(data["partial_at"]), float(data["doubt_at"]),
                   data.get("info", {}))


@dataclass
class Memory:
    """The labelled tuning queries (their focus vectors): which groups answer them, which only come near."""

    vectors: np.ndarray
    answers: list[list[str]]
    near: list[list[str]]

    @classmethod
    def empty(cls, dim: int) -> "Memory":
        return cls(np.zeros((0, dim), dtype=np.float32), [], [])

    def __post_init__(self) -> None:
        self.by_answer: dict[str, list[int]] = {}
        self.by_near: dict[str, list[int]] = {}
        for i, (answers, near) in enumerate(zip(self.answers, self.near)):
            for group in answers:
                self.by_answer.setdefault(group, []).append(i)
            for group in near:
                self.by_near.setdefault(group, []).append(i)
        self.unanswered = np.array([not a for a in self.answers], dtype=bool)

    def to_json(self) -> dict:
        return {"answers": self.answers, "near": self.near}


class RerankData:
    """Per-entry inputs of the features, from the index and the build's rerank folder; a query reads
    only its candidates' rows of them (and multiplies every answer-sentence and search-key vector, see `_cosines`)."""

    def __init__(self, entries: list[FaqEntry], tokenizer: Tokenizer, glossary: Glossary, decisive: DecisiveWords,
                 question_vectors: "QuestionVectors", fields: dict, sentence_vectors: np.ndarray,
                 sentence_rows: np.ndarray, key_vectors: np.ndarray | None = None,
                 key_rows: np.ndarray | None = None, *, row_vendors: Sequence[str]) -> None:
        self.entries = entries
        self.row_vendors = row_vendors
        self.tokenizer = tokenizer
        self.glossary = glossary
        self.decisive = decisive
        self.question_vectors = question_vectors
        self.sentence_vectors = sentence_vectors
        self.sentence_rows = sentence_rows
        # Search keys (corpus/aliases.tsv) count as the entry's question.
        self.key_vectors = key_vectors if key_vectors is not None else np.zeros((0, question_vectors.dim), np.float32)
        self.key_rows = key_rows if key_rows is not None else np.zeros(0, dtype=np.int32)
        self.sentence_start = _row_starts(self.sentence_rows, len(entries))
        self.key_start = _row_starts(self.key_rows, len(entries))
        keys = fields.get("keys") or [[] for _ in entries]
        self.question_tokens = [set(q) | set(k) for q, k in zip(fields["question"], keys)]
        self.answer_tokens = [set(t) for t in fields["answer"]]
        self.bm25_question = _bm25([q + k for q, k in zip(fields["question"], keys)])
        self.bm25_answer = _bm25(fields["answer"])
        n = len(entries)
        df: dict[str, int] = {}
        for q, a in zip(self.question_tokens, self.answer_tokens):
            for token in q | a:
                df[token] = df.get(token, 0) + 1
        self.idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
        self.unknown_idf = math.log(1 + (n + 0.5) / 0.5)
        self.question_concepts = [decisive.concepts(e.question) for e in entries]
        self.answer_concepts = [decisive.concepts(e.answer) for e in entries]
        self.numbers = [set(NUMBER_RE.findall(normalize(e.question + " " + e.answer))) for e in entries]
        self.question_asks = [decisive.asks(e.question) for e in entries]
        self.question_ids = [corpus_identifiers([e.question]) for e in entries]
        self.entry_ids = [q | corpus_identifiers([e.answer]) for q, e in zip(self.question_ids, entries)]
        self._alternatives = lru_cache(maxsize=4096)(self._token_alternatives)
        self.memory = Memory.empty(question_vectors.dim)

    def _token_alternatives(self, token: str) -> frozenset[str]:
        """The token and the tokens of its glossary translations ("signature" → 签名, 短信签名)."""
        found = {token}
        for term in self.glossary.expansions(token):
            found.update(self.tokenizer.tokens(term))
        return frozenset(found)

    def query_units(self, text: str) -> list[tuple[str, float, frozenset[str]]]:
        units = []
        for token in dict.fromkeys(self.tokenizer.tokens(text)):
            units.append((token, self.idf.get(token, self.unknown_idf), self._alternatives(token)))
        return units

    def dense_question(self, rows: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """Each row's cosine to its question, or to one of its search keys when higher."""
        best = (self.question_vectors[rows] @ vector).astype(np.float64)
        return _best_per_row(best, rows, self.key_start, _cosines(self.key_vectors, vector))

    def dense_sentence(self, rows: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """Each row's best cosine to one of its answer sentences (0 when none is positive)."""
        return _best_per_row(np.zeros(len(rows)), rows, self.sentence_start, _cosines(self.sentence_vectors, vector))


def _row_starts(item_rows: np.ndarray, n: int) -> np.ndarray:
    """Where each entry row's items (answer sentences, search keys) start; the build writes them in row order."""
    if np.any(np.diff(item_rows) < 0):
        raise RerankError("the rerank sentence or key rows are out of order: rebuild with `faq build`")
    return np.searchsorted(item_rows, np.arange(n + 1))


def _best_per_row(best: np.ndarray, rows: np.ndarray, starts: np.ndarray, cosines: np.ndarray) -> np.ndarray:
    """`best` raised, row by row, to the best cosine of that row's items (`starts` from `_row_starts`)."""
    counts = starts[rows + 1] - starts[rows]
    owner = np.repeat(np.arange(len(rows)), counts)
    positions = starts[rows][owner] + np.arange(len(owner)) - (np.cumsum(counts) - counts)[owner]
    np.maximum.at(best, owner, cosines[positions])
    return best


def _cosines(vectors: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Every item's cosine to the query, as one matrix product: BLAS rounds a row's sum differently with
    the matrix's shape, so products of the candidates' items alone would move the model's features
    (by up to 4e-7) and with them the trained model."""
    return vectors @ vector if len(vectors) else np.zeros(0, dtype=np.float32)


class QuestionVectors:
    """Each entry's question-only vector (the first vector the build stored for its row), read for the rows
    asked only: `question_vectors[rows]` is a (len(rows), dim) array."""

    def __init__(self, index) -> None:
        self._vectors = index.vectors  # faiss-like: d, reconstruct_batch(positions)
        self._vector_rows = index.vector_rows  # entry row of each vector, ascending (the build stores them so)
        self.dim = int(index.vectors.d)

    def __getitem__(self, rows) -> np.ndarray:
        first = np.searchsorted(self._vector_rows, np.asarray(rows, dtype=np.int64), side="left")
        return self._vectors.reconstruct_batch(first)


def _bm25(token_lists: list[list[str]]) -> bm25s.BM25:
    model = bm25s.BM25()
    model.index([tokens or ["<empty>"] for tokens in token_lists], show_progress=False)
    return model


def _field_scores(model: bm25s.BM25, tokens: list[str], rows: np.ndarray) -> np.ndarray:
    """`model.get_scores(tokens)[rows]` without scoring the other entries: the same float32 additions, token
    by token in the query's order (bm25s stores each token's entries in ascending order: a binary search)."""
    data, entries, starts = model.scores["data"], model.scores["indices"], model.scores["indptr"]
    scores = np.zeros(len(rows), dtype=data.dtype)
    for token_id in model.get_tokens_ids(tokens):
        start, end = starts[token_id], starts[token_id + 1]
        if start == end:
            continue
        at = np.minimum(np.searchsorted(entries[start:end], rows), end - start - 1)
        found = entries[start + at] == rows
        scores[found] += data[start + at[found]]
    return scores.astype(np.float64)


def _units_found(units: list[tuple[str, float, frozenset[str]]], question: set[str],
                 answer: set[str]) -> tuple[float, float, float]:
    """One pass over the query's units (a unit is found by itself or a translation): the weight the entry's
    question holds, the weight the entry holds anywhere, and the weight of the rarest unit it lacks."""
    in_question = anywhere = rarest = 0.0
    for _, weight, alternatives in units:
        if not alternatives.isdisjoint(question):
            in_question += weight
            anywhere += weight
        elif not alternatives.isdisjoint(answer):
            anywhere += weight
        elif weight > rarest:
            rarest = weight
    return in_question, anywhere, rarest


class Reranker:
    def __init__(self, data: RerankData, model: RerankModel | None) -> None:
        self.data = data
        self.model = model

    @classmethod
    def load(cls, index, glossary: Glossary, trained: bool = True) -> "Reranker":
        """The reranker of a loaded build; `trained=False` while the build is still learning its model."""
        from assistant.rerank_build import DECISIVE_FILE, verify_folder

        folder = index.path / FOLDER
        has_model = trained and verify_folder(folder).get("model", False)
        try:
            fields = json.loads((folder / "fields.json").read_text(encoding="utf-8"))
            sentence_vectors = np.load(folder / "sentence_vectors.npy", allow_pickle=False)
            sentence_rows = np.load(folder / "sentence_rows.npy", allow_pickle=False)
            key_vectors = np.load(folder / "key_vectors.npy", allow_pickle=False)
            key_rows = np.load(folder / "key_rows.npy", allow_pickle=False)
            decisive = DecisiveWords.load(folder / DECISIVE_FILE)
            model = memory = None
            if has_model:
                stored = json.loads((folder / "memory.json").read_text(encoding="utf-8"))
                memory = Memory(np.load(folder / "memory_vectors.npy", allow_pickle=False), stored["answers"],
                                stored["near"])
                model = RerankModel.load(folder)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise RerankError(f"the rerank files in {folder} cannot be loaded ({exc}): rebuild with `faq build`") from exc
        vendors = index.store.vendors
        row_vendors = [vendors[code] for code in index.store.vendor_of(np.arange(len(index.entries))).tolist()]
        data = RerankData(index.entries, index.tokenizer, glossary, decisive, QuestionVectors(index), fields,
                          sentence_vectors, sentence_rows, key_vectors, key_rows, row_vendors=row_vendors)
        if memory is not None:
            data.memory = memory
        return cls(data, model)

    def features(self, query: AnalysedQuery, candidates: list[Candidate], vendor_named: str | None,
                 exclude=None) -> np.ndarray:
        """One row of FEATURES per candidate; `exclude`: memory queries to leave out (in training: the
        query's own fold, so that memory is as new to it as to a query nobody labelled)."""
        d = self.data
        memory = d.memory
        recalled = memory.vectors @ query.vector if query.vector is not None and len(memory.vectors) else np.zeros(0)
        if exclude is not None and len(recalled):
            recalled[exclude] = 0.0  # as a query with no labelled neighbour sees at serving time
        unanswered = float(recalled[memory.unanswered].max(initial=0.0)) if len(recalled) else 0.0

        def recall(group: str, table: dict) -> float:
            return float(recalled[table[group]].max()) if group in table and len(recalled) else 0.0

        mem_answer = [recall(c.group, memory.by_answer) for c in candidates]
        mem_top = max(mem_answer, default=0.0)
        units = d.query_units(query.ask)
        total = sum(w for _, w, _ in units) or 1.0
        text_tokens = [t for t, _, _ in units]
        vector = query.vector
        query_concepts = d.decisive.concepts(query.ask + " " + " ".join(query.expansions))
        top_fused = max(c.fused for c in candidates) or 1e-9
        top_dense = max(c.dense for c in candidates)
        rows_all = sorted({r for c in candidates for r in c.rows})
        at = np.array(rows_all, dtype=np.int64)
        bm25_q = _field_scores(d.bm25_question, text_tokens, at)
        bm25_a = _field_scores(d.bm25_answer, text_tokens, at)
        no_vector = [0.0] * len(rows_all)
        dense_q = dict(zip(rows_all, d.dense_question(at, vector).tolist() if vector is not None else no_vector))
        query_numbers = set(NUMBER_RE.findall(normalize(query.ask))) - query.identifiers
        sentence = dict(zip(rows_all, d.dense_sentence(at, vector).tolist() if vector is not None else no_vector))
        field_q = dict(zip(rows_all, (bm25_q / max(float(bm25_q.max()), 1e-9)).tolist()))
        field_a = dict(zip(rows_all, (bm25_a / max(float(bm25_a.max()), 1e-9)).tolist()))
        top_sentence = max(sentence.values())
        per_row = {}
        for r in rows_all:
            in_question, anywhere, rarest = _units_found(units, d.question_tokens[r], d.answer_tokens[r])
            cover_q, cover_any, rarest = in_question / total, anywhere / total, rarest / d.unknown_idf
            agree, conflict, missing, _ = compare(query_concepts, d.question_concepts[r], d.answer_concepts[r])
            per_row[r] = (cover_q, cover_any, agree, conflict, missing,
                          len(query.identifiers & d.question_ids[r]), len(query.identifiers & d.entry_ids[r]),
                          rarest, len(query_numbers - d.numbers[r]))
        english, long = float(query.english), float(query.is_long)
        out = np.zeros((len(candidates), len(CANDIDATE_FEATURES)))
        for i, candidate in enumerate(candidates):
            rows = candidate.rows
            best = max(rows, key=lambda r: (per_row[r][0], per_row[r][2] - per_row[r][3] - per_row[r][4]))
            cover_q, cover_any, agree, conflict, missing, ids_q, ids_any, rarest, numbers_missing = per_row[best]
            ids_q = max(per_row[r][5] for r in rows)
            ids_any = max(per_row[r][6] for r in rows)
            vendor = d.row_vendors[candidate.shown]
            id_conflict = bool(query.identifiers) and ids_any == 0 and any(d.question_ids[r] for r in rows)
            best_sentence = max(sentence[r] for r in rows)
            out[i] = (
                candidate.fused / top_fused, 1.0 / (i + 1), candidate.dense, candidate.dense - top_dense,
                max(dense_q[r] for r in rows), best_sentence, best_sentence - top_sentence,
                max(field_q[r] for r in rows), max(field_a[r] for r in rows),
                cover_q, cover_any - cover_q, 1.0 - cover_any,
                agree, conflict, missing, rarest, numbers_missing,
                float(vendor_named == vendor), float(vendor_named is not None and vendor_named != vendor),
                float(ids_q > 0), float(candidate.exact > 0), float(id_conflict),
                query.offtopic_margin, english, long,
                mem_answer[i], mem_answer[i] - mem_top, recall(candidate.group, memory.by_near), unanswered,
            )
        unknown = np.tile(self.unknown_features(query), (len(candidates), 1))
        return np.hstack([out, self.ask_features(query, candidates), unknown, places(out[:, RANKED_COLUMNS])])

    def ask_features(self, query: AnalysedQuery, candidates: list[Candidate]) -> np.ndarray:
        """ASK_FEATURES per candidate: the query asks for an amount; it does and the entry states no number
        at all; it does not and the entry's question does."""
        d = self.data
        asks = AMOUNT in d.decisive.asks(query.ask)
        out = np.zeros((len(candidates), len(ASK_FEATURES)))
        for i, candidate in enumerate(candidates):
            stated = any(d.numbers[r] for r in candidate.rows)
            entry_asks = any(AMOUNT in d.question_asks[r] for r in candidate.rows)
            out[i] = (float(asks), float(asks and not stated), float(entry_asks and not asks))
        return out

    def unknown_features(self, query: AnalysedQuery) -> np.ndarray:
        """UNKNOWN_FEATURES: the share of the query's IDF weight on words the corpus does not know (in
        neither language), and their count."""
        units = self.data.query_units(query.ask)
        idf = self.data.idf
        unknown = [w for _, w, alternatives in units if not any(a in idf for a in alternatives)]
        total = sum(w for _, w, _ in units)
        return np.array([sum(unknown) / total if total else 0.0, float(len(unknown))])

    def rerank(self, query: AnalysedQuery, candidates: list[Candidate], vendor_named: str | None = None) -> list[Candidate]:
        """The first DEPTH candidates reordered by the model's probability; the rest follow unchanged."""
        head, tail = candidates[:DEPTH], candidates[DEPTH:]
        if not head or self.model is None:
            return candidates
        x = self.features(query, head, vendor_named)
        probabilities = self.model.probabilities(x)
        for candidate, row, p in zip(head, x, probabilities):
            candidate.features, candidate.probability = row, float(p)
        head.sort(key=lambda c: -c.probability)
        for candidate in tail:
            candidate.probability = 0.0
        return head + tail

    def uncovered_words(self, query: AnalysedQuery, candidate: Candidate) -> list[str]:
        """The query's decisive concepts the entry never mentions, else its rarest uncovered words."""
        d = self.data
        concepts = d.decisive.concepts(query.ask + " " + " ".join(query.expansions))
        rows = candidate.rows
        missing = min((compare(concepts, d.question_concepts[r], d.answer_concepts[r])[3] for r in rows), key=len)
        if missing:
            return missing
        row = rows[0]
        seen = d.question_tokens[row] | d.answer_tokens[row] | excluded_identifiers(query.ask)
        words = [(w, t) for t, w, alt in d.query_units(query.ask) if not alt & seen and len(t) > 1]
        return [t for _, t in sorted(words, reverse=True)[:2]]

    def judge(self, ranked: list[Candidate]) -> dict[str, float]:
        """P(answer), P(partial), P(abstain) of a reranked search."""
        top = ranked[0]
        row = verdict_row([c.probability for c in ranked[:2]], top.features)
        return self.model.judge(row)

    def partial_notice(self, query: AnalysedQuery, candidate: Candidate) -> str:
        """A short sentence: what the best entry covers, and the query's words it does not."""
        words = self.uncovered_words(query, candidate)
        question = self.data.entries[candidate.shown].question
        if query.english:
            rest = f"not {', '.join(words)}" if words else "which may not answer this exact question"
            return f"The FAQ covers “{question}”, {rest}."
        rest = f"没有涉及：{'、'.join(words)}" if words else "未必回答这个具体问题"
        return f"FAQ 只涉及“{question}”，{rest}。"
