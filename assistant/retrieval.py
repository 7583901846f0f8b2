"""Retrieval: each channel's top-k from the store (filters applied there), gathered into candidate rows.

The candidates are the union of the channels' top-k, widened to every allowed edition of their groups;
each channel's score is then known for every candidate (the store fills in the ones a channel did not
return), so the fusion and the abstention evidence never look beyond them.

The lexical channels run on a worker thread while the calling thread embeds the query and searches the dense
channel, and BM25's fill-ins while the dense ones are made: the stores wait on the database, or work in numpy
and the model without the GIL, so a search costs its longer path rather than the sum of both.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from assistant.embed import Embedder
from assistant.fusion import CHANNELS, FusionParams
from assistant.glossary import Glossary
from assistant.stores.base import Candidates, DenseSample, Filter, allowed_rows
from assistant.tokenize import query_identifiers

DEPTH = 100  # entries each channel returns
EXACT_DEPTH = 1000  # entries carrying an identifier: all of them, in practice
LEXICAL_WORKERS = 8  # searches served at once whose lexical channels run beside their dense one


@dataclass
class ChannelScores:
    """Each channel's score of the candidate rows (0 where a channel gives the entry nothing)."""

    rows: np.ndarray
    exact: np.ndarray
    bm25: np.ndarray
    dense: np.ndarray
    ranks: dict[str, dict[int, int]]  # channel → row → 1-based rank among the allowed entries it scored above 0
    groups: dict[int, list[int]]  # group's first row → its allowed candidate members, newest edition first
    query_tokens: list[str]
    known_tokens: int
    offtopic: float  # best cosine to a question the corpus does not answer
    dense_sample: DenseSample  # the query's cosines over a fixed sample of the allowed entries
    dense_top_any: float  # best cosine over every entry, filters aside
    vector: np.ndarray | None = None  # the query's embedding

    def of(self, name: str, rows: list[int]) -> float:
        """The best score of `rows` in one channel."""
        values = getattr(self, name)
        where = np.searchsorted(self.rows, rows)
        return float(values[where].max(initial=0.0)) if len(rows) else 0.0


class Retriever:
    def __init__(self, store, embedder: Embedder, glossary: Glossary, channels=CHANNELS, expand: bool = True,
                 params: FusionParams | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.glossary = glossary
        self.channels = channels
        self.expand = expand
        self.params = params or FusionParams()
        self._lexical_pool = ThreadPoolExecutor(LEXICAL_WORKERS, thread_name_prefix="faq-lexical")

    def bm25_query(self, query: str, context: str | None) -> list[tuple[list[str], float]]:
        tokenizer = self.store.tokenizer
        expanded = list(tokenizer.tokens(query))
        if self.expand:
            for term in self.glossary.expansions(query):
                expanded.extend(t for t in tokenizer.tokens(term) if t not in expanded)
        parts = [(expanded, 1.0)]
        if context:
            parts.append((tokenizer.tokens(context), self.params.ask_bm25))
        return parts

    def retrieve(self, query: str, context: str | None = None, filter: Filter = Filter(),
                 grouped: bool = True, favoured: str | None = None) -> ChannelScores:
        """Scores of each channel over the candidates; `context`, the ask of a long message, adds to BM25 only.
        `favoured`: the vendor the query names, whose entries the fusion ranks above the others' — its own
        top-k join the candidates, as they may overtake the other vendors' after the fusion."""
        store = self.store
        tokens = store.tokenizer.tokens(query)
        bm25_query = self.bm25_query(query, context)
        lexical = self._lexical_pool.submit(self._lexical, query, bm25_query, filter, favoured)
        dense_found, vector = Candidates.none(), None
        gathered = []
        if "dense" in self.channels:
            vector = np.asarray(self.embedder.embed_queries([query])[0], dtype=np.float32)
            dense_found = store.dense(vector, DEPTH, filter)
            gathered.append(dense_found.rows)
            if favoured and filter.vendor is None:
                gathered.append(store.dense(vector, DEPTH, Filter(favoured, filter.doc)).rows)
        found, lexical_rows = lexical.result()
        found["dense"] = dense_found
        gathered.extend(lexical_rows)
        rows = np.unique(np.concatenate(gathered))
        groups: dict[int, list[int]] = {}
        if grouped and len(rows):
            for group in np.unique(store.group_of(rows)).tolist():
                members = store.group_members(group)
                allowed = members[allowed_rows(store, members, filter)] if not filter.empty else members
                groups[int(members[0])] = allowed.tolist()
            rows = np.unique(np.concatenate([rows, *(np.asarray(m, dtype=np.int64) for m in groups.values())]))
        exact = np.zeros(len(rows), dtype=np.float32)
        if len(found["exact"]):
            exact[np.searchsorted(rows, found["exact"].rows)] = found["exact"].scores
        bm25 = None
        if "bm25" in self.channels and len(rows):
            bm25 = self._lexical_pool.submit(store.bm25_scores, bm25_query, rows)
        dense = np.zeros(len(rows), dtype=np.float32)
        dense_sample, dense_top_any, offtopic = DenseSample(0.0, 0.0, 0.0), 0.0, 0.0
        if vector is not None:
            dense = np.maximum(store.dense_scores(vector, rows), 0.0)
            dense_sample = store.dense_sample(vector, filter)
            best = found["dense"] if filter.empty else store.dense(vector, 1)
            dense_top_any = float(best.scores[0]) if len(best) else 0.0
            offtopic = store.offtopic(vector)
        bm25 = bm25.result() if bm25 is not None else np.zeros(len(rows), dtype=np.float32)
        ranks = {name: {int(r): rank for rank, r in enumerate(found[name].rows[found[name].scores > 0], 1)}
                 for name in self.channels}
        known = sum(1 for t in tokens if t in store.vocabulary)
        return ChannelScores(rows, exact, bm25, dense, ranks, groups, tokens, known, offtopic, dense_sample,
                             dense_top_any, vector)

    def _lexical(self, query: str, bm25_query, filter: Filter, favoured: str | None):
        """The exact and BM25 channels' top-k, and the rows they add to the candidates (the favoured
        vendor's own BM25 top-k among them)."""
        store = self.store
        found: dict[str, Candidates] = {name: Candidates.none() for name in CHANNELS}
        if "exact" in self.channels and (wanted := query_identifiers(query)):
            found["exact"] = store.exact(wanted, EXACT_DEPTH, filter)
        if "bm25" in self.channels:
            found["bm25"] = store.bm25(bm25_query, DEPTH, filter)
        rows = [found["exact"].rows, found["bm25"].rows]
        if favoured and filter.vendor is None and "bm25" in self.channels:
            rows.append(store.bm25(bm25_query, DEPTH, Filter(favoured, filter.doc)).rows)
        return found, rows
