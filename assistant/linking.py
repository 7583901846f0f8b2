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
SAME_QUESTION = 0.6
RELATED_QUESTION = 0.4  # accepted when the answers agree this much:
SAME_ANSWER = 0.5
# Cosines of the shipped embedder (query role for questions, passage role for answers).
DENSE_SAME_QUESTION = 0.90
DENSE_CLOSE_QUESTION = 0.85  # accepted when the answers' cosine reaches:
DENSE_SAME_ANSWER = 0.86
DENSE_SAME_CODE = 0.80  # both questions name the same error code or API error name
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
    return rf"(?<![a-z]){word}(?![a-z])" if word.isascii() else word


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
                    group = EditionGroup("g-" + stable_id(vendor.slug, topic_text(entry.question), entry.doc), vendor.slug)
                    by_id[group.id] = group
                group.members.append(entry)
        for group in by_id.values():
            group.members.sort(key=lambda m: rank[m.doc])
        groups.extend(by_id.values())
    for group in groups:
        describe_members(group)
    return groups


class _Linker:
    def __init__(self, entries: list[FaqEntry], contrasts: Contrasts, vectors: Vectors) -> None:
        self.contrasts = contrasts
        self.vectors = vectors
        self.row = {id(e): n for n, e in enumerate(entries)}
        self.entries = entries
        self._q: np.ndarray | None = None
        self._a: np.ndarray | None = None

    def _dense(self) -> tuple[np.ndarray, np.ndarray]:
        if self._q is None:
            self._q = self.vectors.questions(self.entries)
            self._a = self.vectors.answers(self.entries)
        return self._q, self._a

    def assign(self, new: list[FaqEntry], groups: list[EditionGroup]) -> list[tuple[FaqEntry, EditionGroup | None]]:
        """Each new entry with the group it joins (None: a group of its own); one entry per group."""
        if not new:
            return []
        pairs = sorted(
            ((score, i, j) for i, entry in enumerate(new) for j, group in enumerate(groups)
             if (score := self.score(entry, group)) > 0),
            reverse=True,
        )
        chosen: dict[int, int] = {}
        for _, i, j in pairs:
            if i not in chosen and j not in chosen.values():
                chosen[i] = j
        return [(entry, groups[chosen[i]] if i in chosen else None) for i, entry in enumerate(new)]

    def score(self, entry: FaqEntry, group: EditionGroup) -> float:
        """How surely the entry asks the group's question: 0 when it does not."""
        sides = self.contrasts.sides(entry.question)
        codes = identifiers(entry.question)
        best = 0.0
        for member in group.members:
            if self.contrasts.conflict(sides, self.contrasts.sides(member.question)):
                return 0.0
            other_codes = identifiers(member.question)
            if codes and other_codes and not codes & other_codes:
                return 0.0
            best = max(best, self._member_score(entry, member, bool(codes & other_codes)))
        return best

    def _member_score(self, entry: FaqEntry, member: FaqEntry, same_code: bool) -> float:
        lexical = 0.0
        if entry.language == member.language:
            asked = question_similarity(entry.question, member.question)
            if asked >= SAME_QUESTION or (
                asked >= RELATED_QUESTION and dice(bigrams(entry.answer), bigrams(member.answer)) >= SAME_ANSWER
            ):
                lexical = 1.0 + asked  # the old, proven rule ranks first
        q, a = self._dense()
        x, y = self.row[id(entry)], self.row[id(member)]
        asked, answered = float(q[x] @ q[y]), float(a[x] @ a[y])
        dense = (
            asked >= DENSE_SAME_QUESTION
            or (asked >= DENSE_CLOSE_QUESTION and answered >= DENSE_SAME_ANSWER)
            or (same_code and asked >= DENSE_SAME_CODE)
        )
        return max(lexical, asked + answered - 1.0 if dense else 0.0)
