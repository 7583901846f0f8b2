"""Search: exact identifiers, BM25 and dense channels, fused; one hit per edition group; abstention."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from assistant.abstain import AbstentionModel, Evidence
from assistant.editions import pick_member, query_language
from assistant.embed import Embedder, load_embedder
from assistant.entry import FaqEntry
from assistant.errors import AssistantError
from assistant.excerpt import informative_excerpt
from assistant.glossary import Glossary
from assistant.index import LoadedIndex, check_embedder
from assistant.query_analysis import AnalysedQuery, analyse
from assistant.rerank import Candidate, Reranker
from assistant.safe_text import clean_text
from assistant.tokenize import corpus_identifiers, normalize, query_identifiers

MAX_QUERY_CHARS = 500
MAX_TOP_K = 50
RRF_K = 10
# Channel weights, tuned on the old labelled queries (tune split of corpus/eval/labelled.jsonl) (`faq eval` shows the baselines beside them).
# BM25 alone is weak on paraphrases and English, so it nudges the dense ranking rather than leads it.
WEIGHTS = {"exact": 1.0, "bm25": 0.15, "dense": 1.0}
RRF_WEIGHTS = {"exact": 2.0, "bm25": 0.2, "dense": 1.0}
CHANNEL_DEPTH = 10  # a channel "found" an entry when it ranks it this high
CHANNELS = ("exact", "bm25", "dense")
FUSIONS = ("rrf", "score")
# A query that names one vendor ("阿里云…") keeps the other vendor's entries, ranked lower.
VENDOR_NOT_NAMED = 0.5
# A long message is searched whole (greetings dropped); its asking sentence adds this share of BM25 score.
ASK_BM25 = 0.5


class QueryError(AssistantError, ValueError):
    """The query or its options cannot be searched (empty query, bad top-k, unknown filter)."""


@dataclass
class Hit:
    entry: FaqEntry
    score: float
    channels: list[str]
    edition_note: str | None = None  # a newer edition in another language exists (and may differ)

    def to_json(self) -> dict:
        data = self.entry.to_json()
        data["score"] = round(float(self.score), 4)
        data["channels"] = self.channels
        data["editions"] = [
            {k: e[k] for k in ("id", "doc", "edition", "language", "updated", "answer_changed", "translation") if k in e}
            for e in self.entry.editions
        ]
        if self.edition_note:
            data["edition_note"] = self.edition_note
        return data


@dataclass
class SearchResult:
    query: str
    abstained: bool
    hits: list[Hit]
    confidence: float
    notices: list[str] = field(default_factory=list)
    # The best entry covers the topic but not the ask: what it covers and what it does not.
    partial: str | None = None

    def to_json(self) -> dict:
        data = {"query": self.query, "abstained": self.abstained, "hits": [h.to_json() for h in self.hits]}
        data["confidence"] = round(self.confidence, 4)
        data["partial"] = self.partial
        if self.notices:
            data["notices"] = self.notices
        return data


@dataclass
class ChannelScores:
    """Per-entry scores of each channel (0 where a channel did not find the entry)."""

    exact: np.ndarray
    bm25: np.ndarray
    dense: np.ndarray
    query_tokens: list[str]
    known_tokens: int
    offtopic: float  # best cosine to a question the corpus does not answer
    vector: np.ndarray | None = None  # the query's embedding


class Searcher:
    def __init__(
        self,
        index: LoadedIndex,
        embedder: Embedder | None = None,
        glossary: Glossary | None = None,
        channels: tuple[str, ...] = CHANNELS,
        fusion: str = "score",
        expand: bool = True,
        abstention: AbstentionModel | None = None,
        reranker: Reranker | None = None,
        analysis: bool = True,
    ) -> None:
        if unknown := set(channels) - set(CHANNELS):
            raise ValueError(f"unknown channels {sorted(unknown)}; valid: {', '.join(CHANNELS)}")
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion '{fusion}'; valid: {', '.join(FUSIONS)}")
        self.index = index
        self.embedder = embedder or load_embedder(index.manifest["embedder"]["spec"])
        check_embedder(index, self.embedder)
        self.glossary = glossary or Glossary([])
        self.channels = channels
        self.fusion = fusion
        self.expand = expand
        self.abstention = abstention or AbstentionModel.default(self.embedder.id)
        self.reranker = reranker
        self.analysis = analysis
        self.reranker_depth = 30
        entries = index.entries
        self._vendors = sorted({e.vendor for e in entries})
        self._vendor_names = {
            slug: {normalize(e.vendor_name).split()[0] for e in entries if e.vendor == slug}
            | {normalize(a) for a in index.manifest.get("vendor_aliases", {}).get(slug, ())} | {slug}
            for slug in self._vendors
        }
        self._docs = list(dict.fromkeys(e.doc for e in entries))
        self._entry_ids = [identifiers_of(e) for e in entries]
        self._known_identifiers = set().union(*(in_text for _, in_text in self._entry_ids))
        self._vocabulary = index.bm25.vocab_dict
        self._by_id = {e.id: e for e in entries}
        self._groups: dict[str, list[int]] = {}
        for row, entry in enumerate(entries):
            self._groups.setdefault(entry.group or entry.id, []).append(row)

    @property
    def vendor_names(self) -> dict[str, set[str]]:
        """Vendor slug → the names and aliases (folded) that name it in a query, from the build."""
        return self._vendor_names

    @property
    def vendors(self) -> list[str]:
        return self._vendors

    @property
    def editions(self) -> list[str]:
        return ["latest", "all", *self._docs]

    def entry(self, entry_id: str) -> FaqEntry | None:
        return self._by_id.get(entry_id)

    def validate(self, query: str, top_k: int, vendor: str | None, edition: str | None) -> tuple[str, list[str]]:
        if not isinstance(query, str) or not normalize(query).strip():
            raise QueryError("the query is empty: type a question, an error code or an API error name")
        if not 1 <= top_k <= MAX_TOP_K:
            raise QueryError(f"top-k must be between 1 and {MAX_TOP_K}, got {top_k}")
        if vendor and vendor not in self._vendors:
            raise QueryError(f"unknown vendor '{vendor}'; valid: {', '.join(self._vendors)}")
        if edition and edition not in self.editions:
            raise QueryError(f"unknown edition '{edition}'; valid: {', '.join(self.editions)}")
        notices = []
        length = len(query.strip())
        query = clean_text(query, limit=MAX_QUERY_CHARS * 4).strip()
        if len(query) > MAX_QUERY_CHARS:
            excerpt = informative_excerpt(query, MAX_QUERY_CHARS)
            notices.append(f"the message was {length} characters; the {len(excerpt)} most informative "
                           f"(error codes, questions) were searched: “{excerpt[:80]}…”")
            query = excerpt
        return query, notices

    def search(
        self, query: str, top_k: int = 5, vendor: str | None = None, edition: str | None = None
    ) -> SearchResult:
        return self.search_with_evidence(query, top_k, vendor, edition)[0]

    def search_with_evidence(
        self, query: str, top_k: int = 5, vendor: str | None = None, edition: str | None = None
    ) -> tuple[SearchResult, Evidence]:
        query, notices = self.validate(query, top_k, vendor, edition)
        analysed, scores, units, ranked_channels, allowed, named = self._retrieve(query, vendor, edition)
        evidence = self._evidence(scores, ranked_channels, units, allowed)
        partial = None
        if self.reranker is not None and self.reranker.model is not None and units:
            units, confidence, abstained, partial = self._rerank(analysed, scores, units, named)
        else:
            confidence = self.abstention.confidence(evidence)
            abstained = confidence < self.abstention.threshold
        hits = [self._hit(rows, score, ranked_channels, query_language(query)) for rows, score in units[:top_k]]
        return SearchResult(query, abstained, hits, confidence, notices, partial), evidence

    def analyse(self, query: str) -> AnalysedQuery:
        if not self.analysis:
            return AnalysedQuery(query, query)
        return analyse(query, self.index.tokenizer, self._vocabulary, self.glossary)

    def _retrieve(self, query: str, vendor: str | None, edition: str | None):
        analysed = self.analyse(query)
        scores = self.channel_scores(analysed.focus, context=analysed.ask if analysed.is_long else None)
        analysed.vector = scores.vector
        analysed.offtopic_margin = float(scores.dense.max(initial=0.0)) - scores.offtopic
        allowed = np.array(
            [(not vendor or e.vendor == vendor) and (edition in (None, "latest", "all") or e.doc == edition)
             for e in self.index.entries]
        )
        ranked_channels = {name: self._rank(getattr(scores, name), allowed) for name in self.channels}
        fused = self._fuse(scores, ranked_channels, allowed)
        named = self._vendor_named(query)
        if not vendor and named:
            fused[[e.vendor != named for e in self.index.entries]] *= VENDOR_NOT_NAMED
        units = self._units(fused, allowed, grouped=edition in (None, "latest"))
        return analysed, scores, units, ranked_channels, allowed, named

    def candidates(self, query: str) -> tuple[AnalysedQuery, list[Candidate], str | None]:
        """The fused, grouped candidates before reranking (what the reranker learns from)."""
        query, _ = self.validate(query, 1, None, None)
        analysed, scores, units, _, _, named = self._retrieve(query, None, None)
        return analysed, self._candidates(scores, units[: self.reranker_depth]), named

    def _candidates(self, scores: ChannelScores, units) -> list[Candidate]:
        return [
            Candidate(self.index.entries[rows[0]].group or self.index.entries[rows[0]].id, rows, float(score),
                      float(scores.dense[rows].max()), float(scores.bm25[rows].max()), float(scores.exact[rows].max()))
            for rows, score in units
        ]

    def _rerank(self, analysed: AnalysedQuery, scores: ChannelScores, units, named):
        """Reorder the units by the reranker; its verdict decides abstention and partial matches."""
        depth = self.reranker_depth
        ranked = self.reranker.rerank(analysed, self._candidates(scores, units[:depth]), named)
        verdict = self.reranker.judge(ranked)
        model = self.reranker.model
        exact = bool(analysed.identifiers) and ranked[0].exact > 0
        # A code the corpus knows, asked under filters that hide every entry carrying it: nothing here answers.
        code_hidden = bool(set(analysed.identifiers) & self._known_identifiers) and ranked[0].exact <= 0
        abstained = (verdict["abstain"] >= model.abstain_at and not exact) or code_hidden
        partial = None
        if not abstained and not exact and verdict["partial"] >= model.partial_at:
            partial = self.reranker.partial_notice(analysed, ranked[0])
        units = [(c.rows, c.probability) for c in ranked] + [(rows, 0.0) for rows, _ in units[depth:]]
        return units, verdict["answer"], abstained, partial

    def _vendor_named(self, query: str) -> str | None:
        """The one vendor a query names ("阿里云…", "Tencent Cloud…"), if any."""
        folded = normalize(query)
        named = {slug for slug, names in self._vendor_names.items() if any(n in folded for n in names)}
        return named.pop() if len(named) == 1 else None

    def channel_scores(self, query: str, context: str | None = None) -> ChannelScores:
        """Scores of each channel; `context`, the ask of a long message, adds to BM25 only."""
        n = len(self.index.entries)
        tokens = self.index.tokenizer.tokens(query)
        exact = np.zeros(n, dtype=np.float32)
        wanted = query_identifiers(query)
        if "exact" in self.channels and wanted:
            for row, found in enumerate(self._entry_ids):
                in_question, in_text = found
                exact[row] = 2.0 * len(wanted & in_question) + len(wanted & in_text)
        bm25 = np.zeros(n, dtype=np.float32)
        if "bm25" in self.channels:
            expanded = list(tokens)
            if self.expand:
                for term in self.glossary.expansions(query):
                    expanded.extend(t for t in self.index.tokenizer.tokens(term) if t not in expanded)
            known = [t for t in expanded if t in self._vocabulary]
            if known:
                bm25 = np.asarray(self.index.bm25.get_scores(known), dtype=np.float32)
            if context:
                known = [t for t in self.index.tokenizer.tokens(context) if t in self._vocabulary]
                if known:
                    bm25 += ASK_BM25 * np.asarray(self.index.bm25.get_scores(known), dtype=np.float32)
        dense = np.zeros(n, dtype=np.float32)
        vector = None
        if "dense" in self.channels:
            vector = self.embedder.embed_queries([query])
            similarities, positions = self.index.vectors.search(vector, self.index.vectors.ntotal)
            rows = self.index.vector_rows[positions[0]]
            np.maximum.at(dense, rows, similarities[0])
        known_tokens = sum(1 for t in tokens if t in self._vocabulary)
        offtopic = float((self.index.offtopic @ vector[0]).max()) if vector is not None and len(self.index.offtopic) else 0.0
        return ChannelScores(exact, bm25, dense, tokens, known_tokens, offtopic, vector[0] if vector is not None else None)

    @staticmethod
    def _rank(values: np.ndarray, allowed: np.ndarray) -> dict[int, int]:
        """Entry row → 1-based rank within the channel, for entries the channel scored above 0."""
        order = [int(r) for r in np.argsort(-values, kind="stable") if allowed[r] and values[r] > 0]
        return {row: rank for rank, row in enumerate(order, 1)}

    def _fuse(self, scores: ChannelScores, ranked: dict[str, dict[int, int]], allowed: np.ndarray) -> np.ndarray:
        n = len(allowed)
        fused = np.zeros(n, dtype=np.float64)
        if self.fusion == "rrf":
            for name, ranks in ranked.items():
                for row, rank in ranks.items():
                    fused[row] += RRF_WEIGHTS[name] / (RRF_K + rank)
        else:
            # Calibrated scores: each channel mapped to 0..1 over the allowed entries, then weighted.
            for name in self.channels:
                values = getattr(scores, name).astype(np.float64)
                top = values[allowed].max(initial=0.0)
                if top <= 0:
                    continue
                low = values[allowed].min() if name == "dense" else 0.0  # cosines bunch high: spread them
                fused += WEIGHTS[name] * (values - low) / max(top - low, 1e-9)
        fused[~allowed] = -np.inf
        return fused

    def _units(self, fused: np.ndarray, allowed: np.ndarray, grouped: bool) -> list[tuple[list[int], float]]:
        """Ranked results: edition groups (best member's score) or single entries."""
        if grouped:
            units = []
            for rows in self._groups.values():
                members = [r for r in rows if allowed[r]]
                if members:
                    units.append((members, max(fused[r] for r in members)))
        else:
            units = [([r], fused[r]) for r in range(len(fused)) if allowed[r]]
        units.sort(key=lambda unit: -unit[1])
        return units

    def _hit(self, rows: list[int], score: float, ranked: dict[str, dict[int, int]], language: str = "zh") -> Hit:
        pick = pick_member([self.index.entries[r] for r in rows], language)  # rows: newest edition first
        channels = [
            name for name, ranks in ranked.items()
            if any(ranks.get(r, CHANNEL_DEPTH + 1) <= CHANNEL_DEPTH for r in rows)
        ]
        return Hit(pick.entry, float(score), channels, pick.note)

    def _evidence(self, scores: ChannelScores, ranked, units, allowed: np.ndarray) -> Evidence:
        if not units:
            return Evidence.empty()
        top_rows = units[0][0]
        second_rows = units[1][0] if len(units) > 1 else []
        dense = scores.dense
        dense_allowed = dense[allowed]

        def best(values: np.ndarray, rows: list[int]) -> float:
            return float(max((values[r] for r in rows), default=0.0))

        def best_rank(name: str) -> int:
            ranks = ranked.get(name, {})
            return min((ranks.get(r, 10**6) for r in top_rows), default=10**6)

        bm25_top = float(scores.bm25[allowed].max(initial=0.0))
        return Evidence(
            dense_top=best(dense, top_rows),
            dense_margin=best(dense, top_rows) - best(dense, second_rows),
            dense_z=(best(dense, top_rows) - float(dense_allowed.mean())) / max(float(dense_allowed.std()), 1e-6),
            offtopic_margin=best(dense, top_rows) - scores.offtopic if "dense" in self.channels else -1.0,
            bm25_top=bm25_top,
            bm25_share=best(scores.bm25, top_rows) / bm25_top if bm25_top > 0 else 0.0,
            exact=best(scores.exact, top_rows) > 0,
            agree=best_rank("bm25") <= 3 and best_rank("dense") <= 3,
            known_share=scores.known_tokens / max(len(scores.query_tokens), 1),
        )


def identifiers_of(entry: FaqEntry) -> tuple[set[str], set[str]]:
    """Identifiers in the entry's question, and in its whole text."""
    in_question = corpus_identifiers([entry.question])
    return in_question, in_question | corpus_identifiers([entry.answer])


def open_searcher(settings, model: str | None = None, **options) -> Searcher:
    """Load the published index and the embedder it was built with (or `model`, which must match)."""
    from assistant.index import load_index

    index = load_index(settings)
    embedder = load_embedder(model or index.manifest["embedder"]["spec"])
    glossary = Glossary.load(settings.glossary_path)
    if "reranker" not in options:
        options["reranker"] = Reranker.load(index, glossary)
    return Searcher(index, embedder, glossary, **options)
