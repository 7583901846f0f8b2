"""Linking editions: the same question in several editions (and languages) of one vendor's FAQ is one group.

Group ids are data, not a function of the corpus: corpus/groups.json records entry id → group id, so adding,
removing or reordering editions never renames a group. An entry that is not recorded joins an existing
group only on strong evidence, else it starts its own group:
- never across a contrast of the manifest ([linking] contrasts: 签名 vs 模板, 个人 vs 企业 …) or a different
  error code / API error name;
- same language: the question reworded (shared words), or a weaker match whose answers agree;
- any language: the multilingual embedder finds the questions alike (translations score ~0.9),
  with the answers agreeing when the questions are only close.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from assistant.editions import EditionGroup, describe_members
from assistant.entry import FaqEntry, stable_id
from assistant.errors import CorpusError
from assistant.similarity import question_similarity, topic_text
from assistant.text import bigrams, dice, identifiers

if TYPE_CHECKING:
    from assistant.embed import Embedder
    from assistant.ingest.manifest import Manifest

GROUPS_FILE = "groups.json"
# Character bigrams measure how alike two Chinese questions are; English ones share bigrams by chance.
BIGRAM_LANGUAGES = ("zh",)
SAME_QUESTION = 0.6
RELATED_QUESTION = 0.4  # accepted when the answers agree this much:
SAME_ANSWER = 0.5
# The same answer text under a reworded question (bigram dice, answers this long at least).
SAME_ANSWER_TEXT = 0.8
SAME_ANSWER_CHARS = 40
# Across languages: CSLS of (question cosine + answer cosine), shipped embedder; translations ≥ 0.06,
# the best unrelated candidate ≤ 0.04 on the extra pages (tests/data/links.tsv).
CSLS_SAME_QUESTION = 0.05
CSLS_CLEAR_WINNER = 0.03  # … or this much, when the runner-up trails by:
CSLS_MARGIN = 0.05
# Weak shared words (question similarity, answer bigram dice): with a clear-winner CSLS, the same question.
WEAK_QUESTION = 0.2
WEAK_ANSWER = 0.3
ANSWER_CHARS = 600


def groups_path(manifest: "Manifest") -> Path:
    return manifest.corpus_dir / GROUPS_FILE


def load_recorded(manifest: "Manifest") -> dict[str, str]:
    path = groups_path(manifest)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        groups = data["groups"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorpusError(f"{path}: cannot be read as group assignments ({exc}); restore it from git") from exc
    if not isinstance(groups, dict) or not all(isinstance(v, str) for v in groups.values()):
        raise CorpusError(f"{path}: 'groups' must map entry ids to group ids")
    return groups


def record_groups(manifest: "Manifest", entries: list[FaqEntry]) -> bool:
    """Adds the entries' groups to groups.json (earlier assignments are kept); True when it changed."""
    recorded = load_recorded(manifest)
    merged = {**recorded, **{e.id: e.group for e in entries if e.group}}
    if merged == recorded and groups_path(manifest).exists():
        return False
    text = json.dumps(
        {"about": "entry id -> edition group id; written by `faq add` and `faq build`, never renamed",
         "groups": dict(sorted(merged.items()))},
        ensure_ascii=False, indent=1,
    )
    path = groups_path(manifest)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".groups-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    os.replace(tmp, path)
    return True


class Vectors:
    """Question and answer vectors, cached by content hash under the cache directory."""

    def __init__(self, cache_dir: Path | None, embedder: "Embedder | None" = None) -> None:
        self._cache_dir = cache_dir
        self._embedder = embedder
        self._caches: dict[str, object] = {}

    def _embed(self, role: str, texts: list[str]) -> np.ndarray:
        from assistant.config import Settings
        from assistant.embed import load_embedder
        from assistant.index import EmbeddingCache

        if self._embedder is None:
            self._embedder = load_embedder()
        if role not in self._caches:
            directory = (self._cache_dir or Settings.from_env().cache_dir) / "embeddings"
            self._caches[role] = EmbeddingCache(directory, f"{self._embedder.id}-{role}")
        embed = self._embedder.embed_queries if role == "query" else self._embedder.embed_passages
        return self._caches[role].embed(_Role(embed), texts)[0]

    def questions(self, entries: list[FaqEntry]) -> np.ndarray:
        return self._embed("query", [e.question for e in entries])

    def answers(self, entries: list[FaqEntry]) -> np.ndarray:
        return self._embed("passage", [f"{e.question}\n{e.answer[:ANSWER_CHARS]}" for e in entries])


@dataclass
class _Role:
    embed_passages: object  # what EmbeddingCache calls


class Contrasts:
    """The manifest's contrasts: sides of a distinction, each a set of words in both languages."""

    def __init__(self, axes: tuple[tuple[str, ...], ...]) -> None:
        self.axes = [
            [re.compile("|".join(_word_pattern(w) for w in side.split("|") if w.strip()), re.I) for side in axis]
            for axis in axes
        ]

    def sides(self, text: str) -> list[frozenset[int]]:
        return [frozenset(i for i, side in enumerate(axis) if side.search(text)) for axis in self.axes]

    @staticmethod
    def conflict(a: list[frozenset[int]], b: list[frozenset[int]]) -> bool:
        return any(x and y and x != y for x, y in zip(a, b))


def _word_pattern(word: str) -> str:
    word = re.escape(word.strip())
    return rf"(?<![a-z]){word}(?:s|es)?(?![a-z])" if word.isascii() else word


def link_editions(
    entries: list[FaqEntry], manifest: "Manifest", cache_dir: Path | None = None, vectors: Vectors | None = None
) -> list[EditionGroup]:
    """Sets `group` and `editions` on every entry; returns the groups."""
    recorded = load_recorded(manifest)
    contrasts = Contrasts(manifest.contrasts)
    linker = _Linker(entries, contrasts, vectors or Vectors(cache_dir))
    groups: list[EditionGroup] = []
    for vendor in manifest.vendors.values():
        rank = {doc_id: n for n, doc_id in enumerate(vendor.editions)}
        vendor_entries = [e for e in entries if e.vendor == vendor.slug]
        by_id: dict[str, EditionGroup] = {}
        for entry in vendor_entries:
            if entry.id in recorded:
                by_id.setdefault(recorded[entry.id], EditionGroup(recorded[entry.id], vendor.slug)).members.append(entry)
        for doc_id in vendor.editions:  # newest first: the newest wording names a new group
            new = [e for e in vendor_entries if e.doc == doc_id and e.id not in recorded]
            for entry, group in linker.assign(new, [g for g in by_id.values() if all(m.doc != doc_id for m in g.members)]):
                if group is None:
                    group = EditionGroup(_new_group_id(vendor.slug, entry, by_id), vendor.slug)
                    by_id[group.id] = group
                group.members.append(entry)
        for group in by_id.values():
            group.members.sort(key=lambda m: rank[m.doc])
        groups.extend(by_id.values())
    for group in groups:
        describe_members(group)
    return groups


def _new_group_id(vendor: str, entry: FaqEntry, taken: dict[str, EditionGroup]) -> str:
    """Named by the newest wording of the question (the scheme of the first recorded ids), never reused."""
    group_id, attempt = "g-" + stable_id(vendor, topic_text(entry.question), entry.doc), 1
    while group_id in taken:
        attempt += 1
        group_id = "g-" + stable_id(vendor, topic_text(entry.question), entry.doc, str(attempt))
    return group_id


class _Linker:
    def __init__(self, entries: list[FaqEntry], contrasts: Contrasts, vectors: Vectors) -> None:
        self.contrasts = contrasts
        self.vectors = vectors
        self.entries = entries
        self.row = {id(e): n for n, e in enumerate(entries)}
        self._sim: np.ndarray | None = None

    def _similarity(self) -> np.ndarray:
        """Question cosine + answer cosine of every pair of entries (computed once, vectors cached)."""
        if self._sim is None:
            q, a = self.vectors.questions(self.entries), self.vectors.answers(self.entries)
            self._sim = q @ q.T + a @ a.T
        return self._sim

    def assign(self, new: list[FaqEntry], groups: list[EditionGroup]) -> list[tuple[FaqEntry, EditionGroup | None]]:
        """Each new entry with the group it joins (None: a group of its own); one entry per group."""
        if not new:
            return []
        scores = self._scores(new, groups) if groups else np.zeros((len(new), 0))
        pairs = sorted(
            ((scores[i, j], i, j) for i in range(len(new)) for j in range(len(groups)) if scores[i, j] > 0),
            reverse=True,
        )
        chosen: dict[int, int] = {}
        for _, i, j in pairs:
            if i not in chosen and j not in chosen.values():
                chosen[i] = j
        return [(entry, groups[chosen[i]] if i in chosen else None) for i, entry in enumerate(new)]

    def _scores(self, new: list[FaqEntry], groups: list[EditionGroup]) -> np.ndarray:
        """> 0 where the entry asks the group's question: 2+ on shared words, 1+ on meaning (CSLS)."""
        vetoed = np.array([[self._vetoed(e, g) for g in groups] for e in new])
        lexical = np.array([
            [0.0 if vetoed[i, j] else max((self._lexical(e, m) for m in g.members if m.language == e.language),
                                          default=0.0)
             for j, g in enumerate(groups)]
            for i, e in enumerate(new)
        ])
        weak_words = np.array([
            [any(self._weak_lexical(e, m) for m in g.members if m.language == e.language) for g in groups] for e in new
        ])
        csls, top, lead = _with_margin(_agreed(self._csls(new, groups, vetoed, same=False),
                                               self._csls(new, groups, vetoed, same=True)))
        clear = _clear(csls, lead) | (weak_words & (csls >= CSLS_CLEAR_WINNER))
        meaning = np.where(top & clear, 1.0 + csls, 0.0)
        return np.where(lexical > 0, lexical, meaning)

    def _vetoed(self, entry: FaqEntry, group: EditionGroup) -> bool:
        """A contrast (签名 vs 模板 …) or a different error code between the entry and any member."""
        sides, codes = self.contrasts.sides(entry.question), identifiers(entry.question)
        for member in group.members:
            if self.contrasts.conflict(sides, self.contrasts.sides(member.question)):
                return True
            other = identifiers(member.question)
            if codes and other and not codes & other:
                return True
        return False

    @staticmethod
    def _lexical(entry: FaqEntry, member: FaqEntry) -> float:
        answered = dice(bigrams(entry.answer), bigrams(member.answer))
        if entry.language in BIGRAM_LANGUAGES:
            asked = question_similarity(entry.question, member.question)
            if asked >= SAME_QUESTION or (asked >= RELATED_QUESTION and answered >= SAME_ANSWER):
                return 2.0 + asked + answered
        if answered >= SAME_ANSWER_TEXT and min(len(entry.answer), len(member.answer)) >= SAME_ANSWER_CHARS:
            return 2.0 + answered  # the same answer, word for word, under a reworded question
        return 0.0

    @staticmethod
    def _weak_lexical(entry: FaqEntry, member: FaqEntry) -> bool:
        """Some shared words in the questions and in the answers: evidence that meaning can confirm."""
        return (entry.language in BIGRAM_LANGUAGES
                and question_similarity(entry.question, member.question) >= WEAK_QUESTION
                and dice(bigrams(entry.answer), bigrams(member.answer)) >= WEAK_ANSWER)

    def _csls(self, new: list[FaqEntry], groups: list[EditionGroup], vetoed: np.ndarray, same: bool):
        """Cross-domain similarity local scaling over (question cosine + answer cosine) of the embedder.

        Cosines bunch together (unrelated Chinese pairs ~0.92, unrelated translations ~0.8): what marks the
        same question is a pair that stands out from both sides' other neighbours, and from the runner-up.
        """
        language = new[0].language
        members = [[self.row[id(m)] for m in g.members if (m.language == language) == same] for g in groups]
        if not any(members):
            return np.full((len(new), len(groups)), np.nan)
        sim = self._similarity()
        askers = [self.row[id(e)] for e in self.entries if e.language == language and e.vendor == new[0].vendor]
        rows = [self.row[id(e)] for e in new]
        values = np.full((len(new), len(groups)), np.nan)
        group_side = np.full(len(groups), np.nan)
        for j, rows_j in enumerate(members):
            if not rows_j:
                continue
            values[:, j] = sim[np.ix_(rows, rows_j)].max(axis=1)
            outside = [a for a in askers if a not in {self.row[id(m)] for m in groups[j].members}]
            group_side[j] = _top_mean(sim[np.ix_(outside, rows_j)].max(axis=1)[None, :], axis=1)[0]
        values[vetoed] = np.nan
        return 2 * values - _top_mean(values, axis=1)[:, None] - group_side[None, :]


def _agreed(across: np.ndarray, within: np.ndarray) -> np.ndarray:
    """A group's CSLS over its members in both languages: the weaker side where it has both.

    A group is one question in every language: a match to its English member that its Chinese
    member does not confirm (or the reverse) is no match to the group.
    """
    both = ~np.isnan(across) & ~np.isnan(within)
    return np.where(both, np.minimum(across, within), np.where(np.isnan(across), within, across))


def _with_margin(csls: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSLS (-inf where undefined), whether it is the entry's best group, and its lead over the runner-up."""
    filled = np.nan_to_num(csls, nan=-np.inf)
    ranked = -np.sort(-filled, axis=1)
    best = ranked[:, :1]
    runner_up = ranked[:, 1:2] if filled.shape[1] > 1 else np.full_like(best, -np.inf)
    top = np.isfinite(filled) & (filled >= best)
    with np.errstate(invalid="ignore"):
        lead = np.nan_to_num(best - runner_up, nan=0.0, posinf=np.inf)
    return filled, top, np.broadcast_to(lead, filled.shape)


def _clear(csls: np.ndarray, lead: np.ndarray) -> np.ndarray:
    return (csls >= CSLS_SAME_QUESTION) | ((csls >= CSLS_CLEAR_WINNER) & (lead >= CSLS_MARGIN))


def _top_mean(values: np.ndarray, axis: int, k: int = 5) -> np.ndarray:
    """Mean of the k largest values along the axis, NaNs ignored."""
    filled = np.where(np.isnan(values), -np.inf, values)
    top = -np.sort(-filled, axis=axis).take(range(min(k, filled.shape[axis])), axis=axis)
    finite = np.isfinite(top)
    counts = finite.sum(axis=axis)
    sums = np.where(finite, top, 0.0).sum(axis=axis)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
