"""Search: exact identifiers, BM25 and dense channels, fused; one hit per edition group; abstention."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from assistant.abstain import AbstentionModel, Evidence
from assistant.editions import pick_member, query_language
from assistant.embed import Embedder, load_embedder
from assistant.entry import FaqEntry
from assistant.errors import AssistantError
from assistant.excerpt import informative_excerpt
from assistant.glossary import Glossary
from assistant.fusion import CHANNELS, FUSIONS, FusionParams, fuse_ranks, fuse_scores, group_units, single_units
from assistant.index import check_embedder
from assistant.query_analysis import AnalysedQuery, analyse
from assistant.rerank import DEPTH as RERANK_DEPTH, Candidate, Reranker
from assistant.safe_text import clean_text
from assistant.retrieval import ChannelScores, Retriever
from assistant.stores.base import Filter
from assistant.tokenize import normalize

MAX_QUERY_CHARS = 500
# The longest message a surface accepts. Search reads all of it for its ask, which customers usually put last.
MAX_MESSAGE_CHARS = 10_000
MAX_TOP_K = 50
CHANNEL_DEPTH = 10  # a channel "found" an entry when it ranks it this high
CODE_ENTRIES = 20  # entries carrying a pasted code that tell whose code it is


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


class Searcher:
    """The search pipeline: validation → query analysis → retrieval (each channel's top-k from the store) →
    fusion over the candidates → edition grouping → rerank stage → abstention from the candidates' evidence."""

    def __init__(
        self,
        index,
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
        self.store = getattr(index, "store", index)  # a store, or a build view of one
        self.index = self.store.rerank_source()  # path, manifest, lazy entries: what the reranker and the web read
        manifest = self.store.manifest
        self.embedder = embedder or load_embedder(manifest["embedder"]["spec"])
        check_embedder(self.index, self.embedder)
        self.glossary = glossary or Glossary([])
        self.channels = channels
        self.fusion = fusion
        self.expand = expand
        self.params = FusionParams.from_manifest(manifest)
        self.abstention = abstention or build_abstention(manifest, self.embedder.id)
        self.reranker = reranker
        self.analysis = analysis
        self.reranker_depth = RERANK_DEPTH
        self._vendors = list(self.store.vendors)
        self._vendor_names = {slug: set(names) for slug, names in manifest["vendor_names"].items()}
        self._docs = list(self.store.docs)
        self._documents: list[FaqEntry] | None = None
        self.by_id = EntryLookup(self.store)

    @property
    def retriever(self) -> Retriever:
        # Built on use: tests and `faq eval` swap the embedder, channels or glossary of a searcher.
        return Retriever(self.store, self.embedder, self.glossary, self.channels, self.expand, self.params)

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
        return self.by_id.get(entry_id)

    def documents(self) -> list[FaqEntry]:
        """One entry of each document (its vendor, vendor name, edition): what filter menus and notes read."""
        if self._documents is None:
            self._documents = self.store.entries(self.store.manifest["doc_rows"])
        return self._documents

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
        query = clean_text(query, limit=MAX_MESSAGE_CHARS).strip()
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
        analysed, scores, units, named = self._retrieve(query, vendor, edition)
        evidence = self._evidence(scores, units)
        partial = None
        if self.reranker is not None and self.reranker.model is not None and units:
            units, confidence, abstained, partial = self._rerank(analysed, scores, units, named)
        else:
            confidence = self.abstention.confidence(evidence)
            abstained = confidence < self.abstention.threshold
        language = query_language(query)
        hits = [self._hit(rows, score, scores.ranks, language) for rows, score in units[:top_k]]
        return SearchResult(query, abstained, hits, confidence, notices, partial), evidence

    def analyse(self, query: str) -> AnalysedQuery:
        if not self.analysis:
            return AnalysedQuery(query, query)
        analysed = analyse(query, self.store.tokenizer, self.store.vocabulary, self.glossary)
        if analysed.identifiers:  # one lookup tells whose codes they are, whether any entry prints them
            analysed.code_rows = tuple(self.store.exact(analysed.identifiers, CODE_ENTRIES).rows.tolist())
        meanings = self.glossary.codes.meanings(query)
        if meanings and not analysed.code_rows and not analysed.code_behind:  # codes no entry prints, still the matter
            return analysed.searched_with(meanings)
        return analysed

    def _retrieve(self, query: str, vendor: str | None, edition: str | None):
        analysed = self.analyse(query)
        filter = Filter(vendor or None, edition if edition not in (None, "latest", "all") else None)
        grouped = edition in (None, "latest")
        named = self._vendor_named(query, analysed)
        favoured = named if not vendor else None
        scores = self.retriever.retrieve(analysed.focus, analysed.ask if analysed.is_long else None, filter, grouped,
                                         favoured)
        analysed.vector = scores.vector
        analysed.offtopic_margin = scores.dense_top_any - scores.offtopic
        fused = self._fuse(scores)
        if favoured and len(scores.rows):
            codes = self.store.vendor_of(scores.rows)
            fused[codes != self._vendors.index(named)] *= self.params.vendor_not_named
        score_of = dict(zip(scores.rows.tolist(), fused.tolist()))
        units = group_units(score_of, scores.groups) if grouped else single_units(score_of)
        return analysed, scores, units, named

    def _fuse(self, scores: ChannelScores) -> np.ndarray:
        if self.fusion == "rrf":
            return fuse_ranks(scores.rows, scores.ranks, self.params)
        channels = {name: getattr(scores, name) for name in self.channels}
        return fuse_scores(channels, scores.dense_sample.low, self.params) if len(scores.rows) else np.zeros(0)

    def channel_scores(self, query: str, context: str | None = None) -> ChannelScores:
        """Each channel's scores of the candidates of `query` (no filters)."""
        return self.retriever.retrieve(query, context)

    def candidates(self, query: str) -> tuple[AnalysedQuery, list[Candidate], str | None]:
        """The fused, grouped candidates before reranking (what the reranker learns from)."""
        query, _ = self.validate(query, 1, None, None)
        analysed, scores, units, named = self._retrieve(query, None, None)
        return analysed, self._candidates(scores, units[: self.reranker_depth]), named

    def _candidates(self, scores: ChannelScores, units) -> list[Candidate]:
        shown = self.store.entries([rows[0] for rows, _ in units])
        return [
            Candidate(entry.group or entry.id, rows, float(score), scores.of("dense", rows), scores.of("bm25", rows),
                      scores.of("exact", rows))
            for (rows, score), entry in zip(units, shown)
        ]

    def _rerank(self, analysed: AnalysedQuery, scores: ChannelScores, units, named):
        """Reorder the units by the reranker; its verdict decides abstention and partial matches."""
        depth = self.reranker_depth
        ranked = self.reranker.rerank(analysed, self._candidates(scores, units[:depth]), named)
        verdict = self.reranker.judge(ranked)
        model = self.reranker.model
        exact = bool(analysed.identifiers) and ranked[0].exact > 0
        # A code the corpus knows, asked under filters that hide every entry carrying it: nothing here answers.
        # (An entry without the code ranked first is no such sign: the code may be the background of another ask.)
        code_hidden = bool(analysed.code_rows) and not (scores.exact > 0).any()
        abstain, flag = model.decide(verdict)
        abstained = (abstain and not exact) or code_hidden
        partial = None
        if not abstained and not exact and flag:
            partial = self.reranker.partial_notice(analysed, ranked[0])
        units = [(c.rows, c.probability) for c in ranked] + [(rows, 0.0) for rows, _ in units[depth:]]
        return units, verdict["answer"], abstained, partial

    def _vendor_named(self, query: str, analysed: AnalysedQuery) -> str | None:
        """The one vendor a query names ("阿里云…", "Tencent Cloud…"), else the one whose error codes it pastes:
        a code of the vendors' code references, or one an entry's question names ("返回1014错误如何处理？")."""
        folded = normalize(query)
        named = {slug for slug, names in self._vendor_names.items() if any(n in folded for n in names)}
        if not named:
            named = (self.glossary.codes.vendors(query) | self._vendors_asked_about(analysed)) & set(self._vendors)
        return named.pop() if len(named) == 1 else None

    def _vendors_asked_about(self, analysed: AnalysedQuery) -> set[str]:
        """The vendors of the entries whose question prints one of the query's identifiers."""
        identifiers = analysed.identifiers
        return {entry.vendor for entry in self.store.entries(list(analysed.code_rows))
                if any(identifier in normalize(entry.question) for identifier in identifiers)}

    def _hit(self, rows: list[int], score: float, ranks: dict[str, dict[int, int]], language: str = "zh") -> Hit:
        pick = pick_member(self.store.entries(rows), language)  # rows: newest edition first
        channels = [
            name for name, by_row in ranks.items()
            if any(by_row.get(r, CHANNEL_DEPTH + 1) <= CHANNEL_DEPTH for r in rows)
        ]
        return Hit(pick.entry, float(score), channels, pick.note)

    def _evidence(self, scores: ChannelScores, units) -> Evidence:
        if not units:
            return Evidence.empty()
        top_rows = units[0][0]
        second_rows = units[1][0] if len(units) > 1 else []

        def best_rank(name: str) -> int:
            by_row = scores.ranks.get(name, {})
            return min((by_row.get(r, 10**6) for r in top_rows), default=10**6)

        dense_top = scores.of("dense", top_rows)
        sample = scores.dense_sample
        bm25_top = float(scores.bm25.max(initial=0.0))
        return Evidence(
            dense_top=dense_top,
            dense_margin=dense_top - scores.of("dense", second_rows),
            dense_z=(dense_top - sample.mean) / max(sample.std, 1e-6),
            offtopic_margin=dense_top - scores.offtopic if "dense" in self.channels else -1.0,
            bm25_top=bm25_top,
            bm25_share=scores.of("bm25", top_rows) / bm25_top if bm25_top > 0 else 0.0,
            exact=scores.of("exact", top_rows) > 0,
            agree=best_rank("bm25") <= 3 and best_rank("dense") <= 3,
            known_share=scores.known_tokens / max(len(scores.query_tokens), 1),
        )


class EntryLookup(Mapping):
    """Entries by id, read from the store on demand (a dict of every entry would not scale)."""

    def __init__(self, store) -> None:
        self._store = store

    def __getitem__(self, entry_id: str) -> FaqEntry:
        found = self._store.entry_by_id(entry_id) if isinstance(entry_id, str) else None
        if found is None:
            raise KeyError(entry_id)
        return found[1]

    def __iter__(self):
        return (entry.id for entry in self._store.rerank_source().entries)

    def __len__(self) -> int:
        return self._store.size


def build_abstention(manifest: dict, embedder_id: str) -> AbstentionModel:
    """The abstention model the build was made with (its manifest), else the packaged one for the embedder."""
    stored = manifest.get("abstention")
    return AbstentionModel.from_json(stored) if stored else AbstentionModel.default(embedder_id)


def open_searcher(settings, model: str | None = None, store: str | None = None, **options) -> Searcher:
    """The published build (`store`: an index directory or a `postgresql://` URL; default: FAQ_DATABASE_URL,
    else the settings' index directory) and the embedder it was built with (or `model`, which must match)."""
    from assistant.stores import open_store

    opened = open_store(store, settings)
    embedder = load_embedder(model or opened.manifest["embedder"]["spec"])
    glossary = Glossary.from_settings(settings)
    if "reranker" not in options:
        options["reranker"] = Reranker.load(opened.rerank_source(), glossary)
    return Searcher(opened, embedder, glossary, **options)
