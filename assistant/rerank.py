"""Second-stage ranking over the fused candidates, with evidence the single channels do not see.

Per candidate edition group: which of the query's words its *question* covers versus only its
answer; decisive words (corpus/decisive.tsv) agreeing or conflicting; dense similarity to the
question alone and to the best single answer sentence; BM25 on the question and answer fields;
vendor named; exact identifiers; whether the query asks for an amount (a price, count, limit or
duration) and the entry states no number; how much of the query the corpus does not know. A model
learned on the tuning split at build time (assistant/rerank_build.py) turns them into the probability
that the candidate answers the query; that probability also decides abstention, and a covered topic
with an uncovered ask, or a doubtful answer short of abstention, is flagged partial. The model and its inputs live in the build's `rerank/` folder.

Everything per entry is computed when the build is written (assistant/rerank_build.py); loading maps the
folder's arrays and reads nothing per entry, and a query reads its candidates' rows only: their evidence
(one JSON line per row at a recorded offset), their field BM25 postings, their answer-sentence vectors, and
their question and search-key vectors from the store (a build holds each vector once).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import bm25s
import numpy as np

from assistant.compiled_forest import load_compiled
from assistant.decisive import Concept, DecisiveWords, compare
from assistant.errors import AssistantError
from assistant.glossary import Glossary
from assistant.query_analysis import AnalysedQuery
from assistant.stores.vector_file import RESIDENT_BYTES, VectorFile
from assistant.text import bigrams, containment, dice
from assistant.tokenize import excluded_identifiers, normalize, without_identifiers

MODEL_VERSION = 16  # 15: code_behind_carried; 16: the ask's words less those that put its code behind it
# Candidates the reranker sees. Grouped CV on tune, four fold shuffles, R@1 / MRR: 30 0.949 / 0.970, 20 0.949 /
# 0.970, 15 0.950 / 0.971; 20 reads a third fewer rows (features are read per edition row).
DEPTH = 20
CANDIDATE_FEATURES = (
    "fused_rel", "fused_rank_inv", "dense", "dense_gap", "dense_question", "dense_sentence", "dense_sentence_gap",
    "bm25_question", "bm25_answer", "cover_question", "cover_answer_only", "uncovered",
    "decisive_agree", "decisive_conflict", "decisive_missing", "uncovered_rarest", "numbers_missing",
    "vendor_match", "vendor_other",
    "exact_question", "exact_any", "identifier_conflict", "offtopic_margin", "english", "long",
    "memory_answer", "memory_answer_gap", "memory_near", "memory_unanswered",
    # the same word evidence over the whole message (without greetings), beside the ask's: a long message's
    # ask ("How do we get around this?") often leaves its subject to the sentences before it
    "focus_cover_question", "focus_cover_answer_only", "focus_uncovered",
    "focus_decisive_agree", "focus_decisive_conflict", "focus_decisive_missing",
)
ASK_FEATURES = ("asks_amount", "amount_unstated", "amount_unasked")
SCOPE_FEATURES = ("question_narrower",)  # facets the entry's question names and the query does not (语音 for a plain ask)
UNKNOWN_FEATURES = ("unknown_share", "unknown_count")
# Overlapping entries ("短信价格" beside "国内计费策略") differ by a little in each feature, and a tree sees
# one candidate at a time: these give each candidate's place among the list's on the features that
# separate them (0 = the best). Grouped CV on tune, three fold seeds: R@1 0.912 → 0.918 on average.
RANKED_FEATURES = ("dense_question", "cover_question", "uncovered", "decisive_agree", "decisive_missing",
                   "bm25_answer", "memory_near",
                   "focus_cover_question", "focus_uncovered", "focus_decisive_agree", "focus_decisive_missing")
PLACE_FEATURES = tuple(f"{name}_place" for name in RANKED_FEATURES)
# The query's and the entry's question's character pairs, as written (no tokenizer between them): how alike
# (Dice) and the share of the question's pairs the query holds; with their places. A short ask worded as one
# of two near-duplicate questions ("流控限制是什么" for 什么是短信发送流控限制 beside 可以取消流控限制吗).
# Grouped CV on tune, six fold shuffles: R@1 0.9507 → 0.9536, MRR 0.9702 → 0.9718.
SURFACE_FEATURES = ("pairs_dice", "question_pairs_held")
SURFACE_PLACE_FEATURES = tuple(f"{name}_place" for name in SURFACE_FEATURES)
# The ask's words less the codes it pastes: "返回1031以后新买的包多久生效" asks about a new package, not 1031.
# And whether the message puts that code behind it ("1004的问题修好了") while the entry carries the code.
BESIDE_CODE_FEATURES = ("beside_code_cover_question", "beside_code_uncovered", "code_behind_carried")
FEATURES = (CANDIDATE_FEATURES + ASK_FEATURES + SCOPE_FEATURES + UNKNOWN_FEATURES + PLACE_FEATURES
            + SURFACE_FEATURES + SURFACE_PLACE_FEATURES + BESIDE_CODE_FEATURES)
RANKED_COLUMNS = [CANDIDATE_FEATURES.index(name) for name in RANKED_FEATURES]
AMOUNT = "amount"  # the ask kind of corpus/decisive.tsv: a price, count, limit or duration
FOLDER = "rerank"
FIELDS = ("question", "answer")  # BM25 per field: the question with its search keys, the answer
BM25_PARTS = ("data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy", "vocab.index.json",
              "params.index.json")
# Files read whole at load (hashed in the folder's manifest, checked at load) and per-row arrays mapped and
# read for candidate rows only (their sizes in the manifest, checked at load: hashing them would be linear).
FILES = ("document_frequencies.json", "memory.json", "memory_vectors.npy", "model.json", "model.txt", "verdict.txt",
         *(f"bm25_{field}.{part}" for field in FIELDS for part in BM25_PARTS[3:]))
ROW_ARRAYS = ("rows.jsonl", "row_offsets.npy", "sentence_vectors.npy", "sentence_start.npy",
              *(f"bm25_{field}.{part}" for field in FIELDS for part in BM25_PARTS[:3]))
# A row's vectors in the store: its question, its question with the answer, then its search keys
# (assistant.index.embedding_texts); the reranker reads the question's and the keys'.
KEYS_FROM = 2
ROWS_CACHED = 8192  # parsed row evidence kept: a search reads its candidates' rows several times
QUERIES_CACHED = 256  # analysed query texts whose units and concepts are kept
COSINE_BLOCK = 256  # vectors cast to float64 at a time (384 dimensions: 768 KB)
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
    compiled_for: dict | None = None  # the machine the build compiled both models for (compiled_forest.target)
    compiled: tuple | None = None  # both models compiled (CompiledForest); None: LightGBM predicts

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        if self.compiled is not None:
            return self.compiled[0].predict(x)
        return self.booster.predict(x, num_threads=1)

    def judge(self, row: np.ndarray) -> dict[str, float]:
        if self.compiled is not None:
            return dict(zip(VERDICTS, self.compiled[1].predict(row[None, :])[0].tolist()))
        return dict(zip(VERDICTS, self.verdict.predict(row[None, :], num_threads=1)[0].tolist()))

    def decide(self, verdict: dict[str, float]) -> tuple[bool, bool]:
        """(abstain, flag partial): a doubtful answer is quoted with a notice rather than withheld."""
        abstain = verdict["abstain"] >= self.abstain_at
        partial = not abstain and (verdict["partial"] >= self.partial_at or verdict["abstain"] >= self.doubt_at)
        return abstain, partial

    def to_json(self) -> dict:
        return {"version": MODEL_VERSION, "features": list(FEATURES), "verdicts": list(VERDICTS),
                "abstain_at": self.abstain_at, "partial_at": self.partial_at, "doubt_at": self.doubt_at,
                "info": self.info, "compiled_for": self.compiled_for}

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
        compiled_for = data.get("compiled_for")
        return cls(booster, verdict, float(data["abstain_at"]), float(data["partial_at"]), float(data["doubt_at"]),
                   data.get("info", {}), compiled_for, load_compiled(folder, compiled_for))


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
        by_answer: dict[str, list[int]] = {}
        by_near: dict[str, list[int]] = {}
        for i, (answers, near) in enumerate(zip(self.answers, self.near)):
            for group in answers:
                by_answer.setdefault(group, []).append(i)
            for group in near:
                by_near.setdefault(group, []).append(i)
        self.by_answer = {group: np.array(found, dtype=np.int64) for group, found in by_answer.items()}
        self.by_near = {group: np.array(found, dtype=np.int64) for group, found in by_near.items()}
        self.unanswered = np.array([not a for a in self.answers], dtype=bool)
        self._answer_table, self._near_table = _GroupTable(self.by_answer), _GroupTable(self.by_near)

    def answers_recalled(self, recalled: np.ndarray) -> dict[str, float]:
        """Each group's highest similarity (`recalled`: the query's to each memory query) among the memory
        queries it answers."""
        return self._answer_table.best(recalled)

    def near_recalled(self, recalled: np.ndarray) -> dict[str, float]:
        """Each group's highest similarity among the memory queries it only comes near."""
        return self._near_table.best(recalled)

    def to_json(self) -> dict:
        return {"answers": self.answers, "near": self.near}


class _GroupTable:
    """Memory queries by group, laid out so that one pass gives every group's best similarity."""

    def __init__(self, by_group: dict[str, np.ndarray]) -> None:
        self.groups = list(by_group)
        self.order = np.concatenate([by_group[g] for g in self.groups]) if self.groups else np.zeros(0, np.int64)
        self.bounds = np.cumsum([0] + [len(by_group[g]) for g in self.groups[:-1]])

    def best(self, recalled: np.ndarray) -> dict[str, float]:
        if not len(recalled) or not self.groups:
            return {}
        return dict(zip(self.groups, np.maximum.reduceat(recalled[self.order], self.bounds).tolist()))


@dataclass(frozen=True)
class RowEvidence:
    """What the features read of one entry row, computed at build time (rerank_build.row_evidence)."""

    question_tokens: frozenset[str]  # its question's and search keys' tokens
    answer_tokens: frozenset[str]
    question_concepts: frozenset[Concept]
    answer_concepts: frozenset[Concept]
    numbers: frozenset[str]  # in the question or the answer
    question_asks: frozenset[str]
    question_ids: frozenset[str]  # identifiers in the question
    entry_ids: frozenset[str]  # identifiers in the question or the answer

    def to_json(self) -> dict:
        concepts = lambda found: sorted([c.facet, c.name] for c in found)  # noqa: E731
        return {"question_tokens": sorted(self.question_tokens), "answer_tokens": sorted(self.answer_tokens),
                "question_concepts": concepts(self.question_concepts), "answer_concepts": concepts(self.answer_concepts),
                "numbers": sorted(self.numbers), "question_asks": sorted(self.question_asks),
                "question_ids": sorted(self.question_ids), "entry_ids": sorted(self.entry_ids)}

    @classmethod
    def from_json(cls, data: dict) -> "RowEvidence":
        concepts = lambda pairs: frozenset(Concept(facet, name) for facet, name in pairs)  # noqa: E731
        return cls(frozenset(data["question_tokens"]), frozenset(data["answer_tokens"]),
                   concepts(data["question_concepts"]), concepts(data["answer_concepts"]), frozenset(data["numbers"]),
                   frozenset(data["question_asks"]), frozenset(data["question_ids"]), frozenset(data["entry_ids"]))


class RerankData:
    """The build's rerank folder as the features read it: small tables loaded (document frequencies, the
    field BM25 vocabularies), per-row arrays memory-mapped and read for the candidates' rows only."""

    def __init__(self, folder, index, glossary: Glossary, decisive: DecisiveWords) -> None:
        self.entries = index.entries
        self.tokenizer = index.tokenizer
        self.glossary = glossary
        self.decisive = decisive
        self.row_vectors = RowVectors(index)
        self._store = index.store
        self._vendors = list(index.store.vendors)
        n = len(index.entries)
        # plain arrays over the mapped files (np.memmap's slices cost a Python call each)
        mapped = lambda name: np.load(folder / name, mmap_mode="r", allow_pickle=False).view(np.ndarray)  # noqa: E731
        self._row_offsets = mapped("row_offsets.npy")
        # Search keys (corpus/aliases.tsv) count as the entry's question.
        # Item vectors are read with pread, as the store's (mapped, the pages around each read would stay resident),
        # or, a small corpus's, read whole when opened.
        self.sentence_vectors = VectorFile(folder / "sentence_vectors.npy", RESIDENT_BYTES)
        self.sentence_start = mapped("sentence_start.npy")
        for name, starts, items in (("row", self._row_offsets, None), ("sentence", self.sentence_start, self.sentence_vectors)):
            if len(starts) != n + 1 or (items is not None and int(starts[-1]) != items.ntotal):
                raise RerankError(f"the rerank {name} offsets do not match the build's {n} entries: rebuild with `faq build`")
        self.bm25_question, self.bm25_answer = (_load_bm25(folder, field) for field in FIELDS)
        stored = json.loads((folder / "document_frequencies.json").read_text(encoding="utf-8"))
        if stored["entries"] != n:
            raise RerankError(f"the rerank document frequencies count other entries than {n}: rebuild with `faq build`")
        self.idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in stored["frequencies"].items()}
        self.unknown_idf = math.log(1 + (n + 0.5) / 0.5)
        self._rows_file = open(folder / "rows.jsonl", "rb")
        self.row = lru_cache(maxsize=ROWS_CACHED)(self._read_row)
        self._alternatives = lru_cache(maxsize=4096)(self._token_alternatives)
        self.question_pairs = lru_cache(maxsize=ROWS_CACHED)(self._question_pairs)
        self.query_units = lru_cache(maxsize=QUERIES_CACHED)(self._query_units)  # a search asks up to three times
        self.unit_finder = lru_cache(maxsize=QUERIES_CACHED)(lambda text: UnitFinder(self.query_units(text)))
        self.concepts = lru_cache(maxsize=QUERIES_CACHED)(decisive.concepts)
        self.memory = Memory.empty(self.row_vectors.dim)

    def _read_row(self, row: int) -> RowEvidence:
        start, end = int(self._row_offsets[row]), int(self._row_offsets[row + 1])
        return RowEvidence.from_json(json.loads(os.pread(self._rows_file.fileno(), end - start, start)))

    def _question_pairs(self, row: int) -> frozenset[str]:
        return bigrams(self.entries[row].question)

    def vendors_of(self, rows: list[int]) -> list[str]:
        return [self._vendors[code] for code in self._store.vendor_of(np.asarray(rows, dtype=np.int64)).tolist()]

    def _token_alternatives(self, token: str) -> frozenset[str]:
        """The token and the tokens of its glossary translations ("signature" → 签名, 短信签名)."""
        found = {token}
        for term in self.glossary.expansions(token):
            found.update(self.tokenizer.tokens(term))
        return frozenset(found)

    def forget_queries(self) -> None:
        """Empty the per-query caches (a benchmark times a query's stage as its first search would)."""
        self.query_units.cache_clear()
        self.unit_finder.cache_clear()
        self.concepts.cache_clear()
        self.tokenizer.forget()

    def _query_units(self, text: str) -> tuple[tuple[str, float, frozenset[str]], ...]:
        """The text's distinct tokens, each with its IDF and its alternatives (glossary translations)."""
        return tuple((token, self.idf.get(token, self.unknown_idf), self._alternatives(token))
                     for token in dict.fromkeys(self.tokenizer.tokens(text)))

    def dense_question(self, rows: np.ndarray, vector: np.ndarray, with_keys: np.ndarray) -> np.ndarray:
        """Each row's cosine to its question, or, for the rows `with_keys` marks, to one of its search keys
        when higher. The editions of a group share their keys (assistant.aliases): one member's are read."""
        first, last = self.row_vectors.spans(rows)
        keys = np.where(with_keys, np.maximum(last - first - KEYS_FROM, 0), 0)
        # per row: its question's position, then its keys'
        return _best_per_row(np.full(len(rows), -np.inf), _runs(first, keys + 1, skip_after_first=KEYS_FROM - 1),
                             keys + 1, self.row_vectors.vectors, vector)

    def dense_sentence(self, rows: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """Each row's best cosine to one of its answer sentences (0 when none is positive)."""
        first = np.asarray(self.sentence_start[rows], dtype=np.int64)
        counts = np.asarray(self.sentence_start[rows + 1], dtype=np.int64) - first
        return _best_per_row(np.zeros(len(rows)), _runs(first, counts), counts, self.sentence_vectors, vector)


def _runs(first: np.ndarray, counts: np.ndarray, skip_after_first: int = 0) -> np.ndarray:
    """The positions first[i], first[i] + 1, … (counts[i] of them) of each row i, in row order; with
    `skip_after_first`, that many positions after each row's first are passed over."""
    owner = np.repeat(np.arange(len(first)), counts)
    step = np.arange(len(owner)) - (np.cumsum(counts) - counts)[owner]
    return first[owner] + step + np.where(step > 0, skip_after_first, 0)


def _best_per_row(best: np.ndarray, positions: np.ndarray, counts: np.ndarray, items, vector: np.ndarray) -> np.ndarray:
    """`best` raised, row by row, to the best cosine of that row's items (answer sentences, search keys):
    `positions` holds each row's `counts[i]` item positions, row after row; only those items are read."""
    if not len(positions):
        return best
    found = counts > 0
    starts = (np.cumsum(counts) - counts)[found]
    best[found] = np.maximum(best[found], np.maximum.reduceat(cosines(items.reconstruct_batch(positions), vector), starts))
    return best


def cosines(vectors: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Each vector's cosine to the query, in float64 from float32 vectors: each product is exact and each row's
    sum is one dot product of that row alone (np.vecdot), so a row's cosine does not depend on which other rows
    are read with it (a matrix product's kernel rounds a row's sum differently with the row's place in the
    matrix) and equals a plain per-vector np.dot. Cast a block at a time: the float64 copy stays in cache."""
    vector = np.asarray(vector, dtype=np.float64)
    out = np.empty(len(vectors))
    for start in range(0, len(vectors), COSINE_BLOCK):
        out[start : start + COSINE_BLOCK] = np.vecdot(np.asarray(vectors[start : start + COSINE_BLOCK], np.float64), vector)
    return out


class RowVectors:
    """Where each entry row's vectors lie in the store's vectors (its question's first, its search keys' from
    KEYS_FROM on), read for the rows asked only."""

    def __init__(self, index) -> None:
        self.vectors = index.vectors  # faiss-like: d, reconstruct_batch(positions)
        self._vector_rows = index.vector_rows  # entry row of each vector, ascending (the build stores them so)
        self.dim = int(index.vectors.d)

    def spans(self, rows) -> tuple[np.ndarray, np.ndarray]:
        """The first and one-past-the-last vector position of each row."""
        rows = np.asarray(rows, dtype=self._vector_rows.dtype)  # another dtype would copy the whole array per search
        return (np.searchsorted(self._vector_rows, rows, side="left").astype(np.int64),
                np.searchsorted(self._vector_rows, rows, side="right").astype(np.int64))


def bm25_names(field: str) -> dict[str, str]:
    """bm25s's save/load file-name arguments for one field's model, flat in the rerank folder."""
    keys = ("data_name", "indices_name", "indptr_name", "vocab_name", "params_name")
    return {key: f"bm25_{field}.{part}" for key, part in zip(keys, BM25_PARTS)}


def _load_bm25(folder, field: str) -> bm25s.BM25:
    model = bm25s.BM25.load(str(folder), mmap=True, show_progress=False, **bm25_names(field))
    model.scores = {name: array.view(np.ndarray) if isinstance(array, np.memmap) else array
                    for name, array in model.scores.items()}
    return model


def _field_scores(model: bm25s.BM25, tokens: list[str], rows: np.ndarray) -> np.ndarray:
    """`model.get_scores(tokens)[rows]` without scoring the other entries: the same float32 additions, token
    by token in the query's order (bm25s stores each token's entries in ascending order: a binary search)."""
    data, entries, starts = model.scores["data"], model.scores["indices"], model.scores["indptr"]
    scores = np.zeros(len(rows), dtype=data.dtype)
    for token_id in model.get_tokens_ids(tokens):
        start, end = int(starts[token_id]), int(starts[token_id + 1])
        if start == end:
            continue
        postings = entries[start:end]
        at = np.minimum(np.searchsorted(postings, rows.astype(postings.dtype, copy=False)), end - start - 1)
        found = postings[at] == rows
        scores[found] += data[start + at[found]]
    return scores.astype(np.float64)


def _surface(asked: frozenset[str], offered: frozenset[str]) -> tuple[float, float]:
    """SURFACE_FEATURES of one entry row: the query's and its question's character pairs."""
    return dice(asked, offered), containment(offered, asked)


class UnitFinder:
    """The query's units (a unit is found by itself or a translation) as one token set, so that an entry row's
    tokens are met by two set intersections instead of a membership test per unit."""

    def __init__(self, units: tuple[tuple[str, float, frozenset[str]], ...]) -> None:
        self.weights = [weight for _, weight, _ in units]
        self._units_of: dict[str, list[int]] = {}
        for position, (_, _, alternatives) in enumerate(units):
            for token in alternatives:
                self._units_of.setdefault(token, []).append(position)
        self._tokens = frozenset(self._units_of)
        self._heaviest_first = sorted(((w, i) for i, w in enumerate(self.weights)), key=lambda pair: -pair[0])

    def _found(self, tokens: frozenset[str]) -> set[int]:
        return {position for token in self._tokens & tokens for position in self._units_of[token]}

    def found(self, question: frozenset[str], answer: frozenset[str], rarest: bool = False) -> tuple[float, float, float]:
        """The weight the entry's question holds, the weight the entry holds anywhere (summed in the units'
        order, as one pass over them would) and, when asked, the weight of the rarest unit it lacks."""
        in_question = self._found(question)
        anywhere = in_question | self._found(answer)
        weight_of = self.weights.__getitem__
        lacking = next((w for w, position in self._heaviest_first if position not in anywhere), 0.0) if rarest else 0.0
        return sum(map(weight_of, sorted(in_question))), sum(map(weight_of, sorted(anywhere))), lacking


class Reranker:
    def __init__(self, data: RerankData, model: RerankModel | None) -> None:
        self.data = data
        self.model = model

    @classmethod
    def load(cls, index, glossary: Glossary, trained: bool = True) -> "Reranker":
        """The reranker of a loaded build; `trained=False` while the build is still learning its model."""
        from assistant.rerank_build import DECISIVE_FILE, verify_folder

        folder = index.path / FOLDER
        has_model = trained and verify_folder(folder, len(index.entries)).get("model", False)
        try:
            data = RerankData(folder, index, glossary, DecisiveWords.load(folder / DECISIVE_FILE))
            model = None
            if has_model:
                stored = json.loads((folder / "memory.json").read_text(encoding="utf-8"))
                data.memory = Memory(np.load(folder / "memory_vectors.npy", allow_pickle=False), stored["answers"],
                                     stored["near"])
                model = RerankModel.load(folder)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise RerankError(f"the rerank files in {folder} cannot be loaded ({exc}): rebuild with `faq build`") from exc
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
        answered_by, near_by = memory.answers_recalled(recalled), memory.near_recalled(recalled)
        mem_answer = np.array([answered_by.get(c.group, 0.0) for c in candidates])
        mem_near = np.array([near_by.get(c.group, 0.0) for c in candidates])

        units = d.query_units(query.ask_words)
        total = sum(w for _, w, _ in units) or 1.0
        beside_code = d.query_units(without_identifiers(query.ask_words, query.identifiers)) if query.identifiers else None
        beside_total = sum(w for _, w, _ in beside_code or ()) or 1.0
        expansions = " " + " ".join(query.expansions)
        query_concepts = d.concepts(query.ask_words + expansions)
        separate_focus = query.focus != query.ask_words
        focus_units = d.query_units(query.focus)
        find_units, find_focus = d.unit_finder(query.ask_words), d.unit_finder(query.focus)
        find_beside = d.unit_finder(without_identifiers(query.ask_words, query.identifiers)) if query.identifiers else None
        focus_total = sum(w for _, w, _ in focus_units) or 1.0
        focus_concepts = d.concepts(query.focus + expansions)
        query_numbers = set(NUMBER_RE.findall(normalize(query.ask_words))) - query.identifiers
        rows_all = sorted({r for c in candidates for r in c.rows})
        at = np.array(rows_all, dtype=np.int64)
        # Per row of rows_all: dense and field scores, then the evidence of its words.
        vector = query.vector
        no_vector = np.zeros(len(rows_all))
        shown = {c.shown for c in candidates}
        with_keys = np.fromiter((r in shown for r in rows_all), dtype=bool, count=len(rows_all))
        dense_q = d.dense_question(at, vector, with_keys) if vector is not None else no_vector
        sentence = d.dense_sentence(at, vector) if vector is not None else no_vector
        text_tokens = [t for t, _, _ in units]
        bm25_q = _field_scores(d.bm25_question, text_tokens, at)
        bm25_a = _field_scores(d.bm25_answer, text_tokens, at)
        field_q = bm25_q / max(float(bm25_q.max()), 1e-9)
        field_a = bm25_a / max(float(bm25_a.max()), 1e-9)
        evidence, choice, focus_evidence, focus_choice, beside = [], [], [], [], []
        ids_q, ids_any, has_ids, stated, entry_asks, narrower = (np.zeros(len(rows_all)) for _ in range(6))
        asked = bigrams(query.text)
        surface = np.array([_surface(asked, d.question_pairs(r)) for r in rows_all]).reshape(-1, 2)
        query_facets = {c.facet for c in query_concepts}
        for i, r in enumerate(rows_all):
            row = d.row(r)
            in_question, anywhere, rarest = find_units.found(row.question_tokens, row.answer_tokens, rarest=True)
            cover_q, cover_any = in_question / total, anywhere / total
            agree, conflict, missing, _ = compare(query_concepts, row.question_concepts, row.answer_concepts)
            evidence.append((cover_q, cover_any - cover_q, 1.0 - cover_any, agree, conflict, missing,
                             rarest / d.unknown_idf, len(query_numbers - row.numbers)))
            choice.append((cover_q, agree - conflict - missing))
            if beside_code is not None:
                in_question, anywhere, _ = find_beside.found(row.question_tokens, row.answer_tokens)
                beside.append((in_question / beside_total, 1.0 - anywhere / beside_total))
            else:
                beside.append((cover_q, 1.0 - cover_any))
            if separate_focus:
                in_question, anywhere, _ = find_focus.found(row.question_tokens, row.answer_tokens)
                if focus_concepts != query_concepts:
                    agree, conflict, missing, _ = compare(focus_concepts, row.question_concepts, row.answer_concepts)
                cover_q, cover_any = in_question / focus_total, anywhere / focus_total
            focus_evidence.append((cover_q, cover_any - cover_q, 1.0 - cover_any, agree, conflict, missing))
            focus_choice.append((cover_q, agree - conflict - missing))
            ids_q[i], ids_any[i] = len(query.identifiers & row.question_ids), len(query.identifiers & row.entry_ids)
            has_ids[i], stated[i], entry_asks[i] = bool(row.question_ids), bool(row.numbers), AMOUNT in row.question_asks
            narrower[i] = len({c.facet for c in row.question_concepts} - query_facets)

        # Per candidate: the evidence of its best-covered member row, the best of its members' scores.
        slot = {r: i for i, r in enumerate(rows_all)}
        members = [[slot[r] for r in c.rows] for c in candidates]
        best = [max(m, key=choice.__getitem__) if len(m) > 1 else m[0] for m in members]
        focus_best = [max(m, key=focus_choice.__getitem__) if len(m) > 1 else m[0] for m in members]
        flat = np.array([i for m in members for i in m])
        bounds = np.cumsum([0] + [len(m) for m in members[:-1]])

        def best_of(per_row: np.ndarray) -> np.ndarray:
            return np.maximum.reduceat(per_row[flat], bounds)

        fused = np.array([c.fused for c in candidates])
        dense = np.array([c.dense for c in candidates])
        best_sentence = best_of(sentence)
        vendors = d.vendors_of([c.shown for c in candidates])
        vendor_match = np.array([float(vendor_named == v) for v in vendors])
        vendor_other = np.array([float(vendor_named is not None and vendor_named != v) for v in vendors])
        id_conflict = (best_of(ids_any) == 0) & (best_of(has_ids) > 0) & bool(query.identifiers)
        n = len(candidates)
        candidate_columns = [
            fused / (max(fused) or 1e-9), 1.0 / np.arange(1, n + 1), dense, dense - max(dense),
            best_of(dense_q), best_sentence, best_sentence - float(sentence.max()), best_of(field_q), best_of(field_a),
            *np.array([evidence[b] for b in best]).T,
            vendor_match, vendor_other,
            (best_of(ids_q) > 0).astype(float), np.array([float(c.exact > 0) for c in candidates]),
            id_conflict.astype(float),
            np.full(n, query.offtopic_margin), np.full(n, float(query.english)), np.full(n, float(query.is_long)),
            mem_answer, mem_answer - mem_answer.max(), mem_near, np.full(n, unanswered),
            *np.array([focus_evidence[b] for b in focus_best]).T,
        ]
        per_candidate = np.column_stack(candidate_columns)
        asks = AMOUNT in d.decisive.asks(query.ask_words)
        columns = [np.full(n, float(asks)), (asks & (best_of(stated) == 0)).astype(float),
                   ((best_of(entry_asks) > 0) & (not asks)).astype(float), narrower[best]]
        columns += [np.full(n, value) for value in self.unknown_features(query)]
        surface_best = np.column_stack([best_of(surface[:, 0]), best_of(surface[:, 1])])
        return np.hstack([per_candidate, np.column_stack(columns), places(per_candidate[:, RANKED_COLUMNS]),
                          surface_best, places(surface_best), np.array([beside[b] for b in best]).reshape(-1, 2),
                          (np.array([c.exact > 0 for c in candidates]) & query.code_behind).astype(float)[:, None]])

    def unknown_features(self, query: AnalysedQuery) -> np.ndarray:
        """UNKNOWN_FEATURES: the share of the query's IDF weight on words the corpus does not know (in
        neither language), and their count."""
        units = self.data.query_units(query.ask_words)
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
        asked = without_identifiers(query.ask_words, query.identifiers) if query.code_behind else query.ask_words
        concepts = d.concepts(asked + " " + " ".join(query.expansions))
        rows = candidate.rows
        missing = min((compare(concepts, d.row(r).question_concepts, d.row(r).answer_concepts)[3] for r in rows),
                      key=len)
        if missing:
            return missing
        shown = d.row(rows[0])
        seen = shown.question_tokens | shown.answer_tokens | excluded_identifiers(query.ask)
        words = [(w, t) for t, w, alt in d.query_units(asked) if not alt & seen and len(t) > 1]
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
