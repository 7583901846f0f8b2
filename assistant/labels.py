"""The labelled queries (corpus/eval/labelled.jsonl): what answers each one, and its fixed split.

A label names entries, not edition groups: {"doc": document id or source file name, "question": text}.
Labels resolve at load time, entry → its edition group, so they survive group-id changes. A label whose
document is not in the corpus yet stays in the file and is reported as unresolved, never guessed.

The split ("tune" / "heldout") is written into the file once, from a hash of the query text,
stratified by kind; nothing is fitted on "heldout" queries.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from assistant.entry import FaqEntry
from assistant.errors import AssistantError
from assistant.text import content_chars
from assistant.tokenize import corpus_identifiers, query_identifiers

SPLITS = ("tune", "heldout")
HELDOUT_SHARE = 0.45
SAME_QUESTION = 0.85  # difflib ratio of the questions' content characters
ABOUT_THE_CODE, BESIDE_A_CODE = "about the code", "beside a code"


class LabelError(AssistantError):
    """The labelled-queries file cannot be read or names something that does not exist."""


@dataclass(frozen=True)
class LabelledQuery:
    query: str
    lang: str
    kind: str
    vendor: str | None
    groups: tuple[str, ...]  # empty: no entry answers it
    split: str = "tune"
    near: tuple[str, ...] = ()  # groups on the topic that do not answer the ask
    unresolved: tuple[str, ...] = ()  # labels whose entry is not in the corpus (yet)
    # for an answerable query pasting a code the corpus prints: whether an answering entry prints it
    # ("about the code": "1015是什么意思") or the code is the background of another ask ("报了1033，发票去哪开")
    code_role: str | None = None

    @property
    def in_corpus(self) -> bool:
        return bool(self.groups)

    @property
    def near_miss(self) -> bool:
        """The FAQ covers the topic but not the ask: the right behaviour is to abstain or flag it partial."""
        return not self.groups and bool(self.near)

    @property
    def usable(self) -> bool:
        return not self.unresolved


class EntryResolver:
    """Label → entry: by document id or source file name, then by the question's content."""

    def __init__(self, entries: list[FaqEntry]) -> None:
        self._by_doc: dict[str, list[FaqEntry]] = defaultdict(list)
        for entry in entries:
            self._by_doc[entry.doc].append(entry)
            self._by_doc[PurePosixPath(entry.source.path).name].append(entry)
        self._groups = {e.group for e in entries}

    def knows_doc(self, doc: str) -> bool:
        return doc in self._by_doc

    def group(self, doc: str, question: str) -> str | None:
        candidates = self._by_doc.get(doc, [])
        wanted = content_chars(question)
        best, best_ratio = None, 0.0
        for entry in candidates:
            have = content_chars(entry.question)
            ratio = 1.0 if have == wanted else difflib.SequenceMatcher(None, wanted, have).ratio()
            if ratio > best_ratio:
                best, best_ratio = entry, ratio
        return best.group if best is not None and best_ratio >= SAME_QUESTION else None

    def has_group(self, group: str) -> bool:
        return group in self._groups


def query_texts(path: Path) -> list[str]:
    """The labelled queries' texts alone (for load tests), without resolving their labels."""
    if not path.exists():
        raise LabelError(f"no labelled queries at {path}")
    return [json.loads(line)["query"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_queries(path: Path, entries: list[FaqEntry]) -> list[LabelledQuery]:
    """Every labelled query, its labels resolved against `entries`."""
    if not path.exists():
        raise LabelError(f"no labelled queries at {path}")
    resolver = EntryResolver(entries)
    printed: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        printed[entry.group] |= corpus_identifiers([entry.question, entry.answer])
    known = set().union(*printed.values())
    queries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            query = _labelled(data, resolver, f"{path}:{number}")
        except (ValueError, KeyError, TypeError) as exc:
            raise LabelError(f"{path}:{number}: not a labelled query ({exc})") from exc
        pasted = query_identifiers(query.query) & known
        if pasted and query.groups:
            about = any(pasted & printed[group] for group in query.groups)
            query = replace(query, code_role=ABOUT_THE_CODE if about else BESIDE_A_CODE)
        queries.append(query)
    return queries


def _labelled(data: dict, resolver: EntryResolver, where: str) -> LabelledQuery:
    split = data.get("split", "tune")
    if split not in SPLITS:
        raise LabelError(f"{where}: split must be one of {', '.join(SPLITS)}, got {split!r}")
    unresolved: list[str] = []

    def resolve(labels: list[dict]) -> tuple[str, ...]:
        groups = []
        for label in labels:
            if not resolver.knows_doc(label["doc"]):
                unresolved.append(label["doc"])
                continue
            group = resolver.group(label["doc"], label["question"])
            if group is None:
                raise LabelError(f"{where}: no entry of {label['doc']} asks {label['question']!r}")
            if group not in groups:
                groups.append(group)
        return tuple(groups)

    for field in ("query", "lang", "kind"):
        if not isinstance(data[field], str) or not data[field].strip():
            raise LabelError(f"{where}: {field} must be non-empty text, got {data[field]!r}")
    groups = resolve(data.get("answers", []))
    near = tuple(g for g in resolve(data.get("near", [])) if g not in groups)
    return LabelledQuery(
        data["query"], data["lang"], data["kind"], data.get("vendor"), groups, split, near, tuple(unresolved)
    )


def heldout_by_hash(queries: list[dict], share: float = HELDOUT_SHARE) -> dict[str, str]:
    """Query text → split: within each kind, queries ordered by a hash of their text, every
    1/share-th one held out. Deterministic, blind to results, stratified by kind."""
    by_kind: dict[str, list[str]] = defaultdict(list)
    for query in queries:
        by_kind[query["kind"]].append(query["query"])
    split = {}
    for texts in by_kind.values():
        ordered = sorted(texts, key=lambda text: hashlib.sha256(text.encode("utf-8")).hexdigest())
        for position, text in enumerate(ordered):
            held = int((position + 1) * share) > int(position * share)
            split[text] = "heldout" if held else "tune"
    return split


def merge(old_path: Path, new_paths: list[Path], entries: list[FaqEntry], out: Path) -> dict[str, int]:
    """One labelled file: the old group-labelled queries (tuning split) and the new entry-labelled ones,
    split by `heldout_by_hash`. A query already in `out` keeps the split it was given."""
    newest = {}
    for entry in entries:
        newest.setdefault(entry.group, entry)  # members are stored newest edition first
    kept = {}
    if out.exists():
        kept = {json.loads(line)["query"]: json.loads(line)["split"] for line in out.read_text("utf-8").splitlines()
                if line.strip()}
    merged, seen = [], set()
    for line in old_path.read_text(encoding="utf-8").splitlines() if old_path.exists() else []:
        data = json.loads(line)
        answers = [{"doc": newest[g].doc, "question": newest[g].question} for g in data.pop("groups")]
        data.pop("expect", None)
        merged.append({**data, "answers": answers, "near": [], "split": "tune"})
    new = []
    for path in new_paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                new.append(json.loads(line))
    split = heldout_by_hash(new)
    for data in new:
        merged.append({**data, "split": kept.get(data["query"], split[data["query"]])})
    with out.open("w", encoding="utf-8") as handle:
        for data in merged:
            if data["query"] in seen:
                continue
            seen.add(data["query"])
            handle.write(json.dumps(data, ensure_ascii=False) + "\n")
    counts: dict[str, int] = defaultdict(int)
    for data in merged:
        counts[data["split"]] += 1
    return dict(counts)
