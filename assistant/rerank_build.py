"""The rerank folder of a build: answer-sentence vectors, field tokens, and the model learned on the tuning split.

Training (LightGBM gradient-boosted trees, binary objective: "does this candidate answer the query") reads the labelled queries' "tune" split only; the
abstention and partial thresholds are set on out-of-fold probabilities (GroupKFold by target entry),
so no held-out query and no query's own prediction decides them.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from assistant.aliases import Aliases
from assistant.entry import FaqEntry
from assistant.rerank import (
    FEATURES, FILES, MODEL_VERSION, VERDICTS, Candidate, Memory, RerankError, RerankModel, verdict_row,
)
from assistant.tokenize import Tokenizer

SENTENCE_RE = re.compile(r"[^。！？!?\n；;]+[。！？!?；;]?")
MIN_SENTENCE_CHARS = 6
MAX_SENTENCES = 16
FOLDS = 5
MEMORY_SEED = 11
# Chosen by grouped CV on the tune split (LightGBM lambdarank and logistic regression scored no better).
PARAMS = dict(objective="binary", n_estimators=300, learning_rate=0.05, num_leaves=15, min_child_samples=10,
              reg_lambda=1.0, verbose=-1, n_jobs=1, random_state=7,
              # an entry whose question names another concept of the asked facet (资质 for 签名) never gains by it
              monotone_constraints=[-1 if f == "decisive_conflict" else 0 for f in FEATURES],
              monotone_constraints_method="advanced")
VERDICT_PARAMS = dict(objective="multiclass", n_estimators=120, learning_rate=0.05, num_leaves=7,
                      min_child_samples=8, reg_lambda=1.0, class_weight="balanced", verbose=-1, n_jobs=1,
                      random_state=7)
# Queries nobody tuned for are abstained on more often than the tuning queries in CV (0.019 in CV, 0.040
# held out, with a cap of 2%): abstain under a 1% cap, and quote the band between the 1% and the 2%
# thresholds flagged partial. Grouped CV on tune (1,164 queries; caps 2% -> 1% + band): wrongly abstained
# 0.019 -> 0.0095, out-of-corpus abstained 0.835 -> 0.765 but abstained or flagged 0.957, near misses
# handled 0.767 -> 0.757.
MAX_WRONGLY_ABSTAINED = 0.01
MAX_WRONGLY_DOUBTED = 0.02
# A flagged answer is still the first hit, with a note of what its entry covers: a near miss answered
# with confidence costs more. Grouped CV on tune (thresholds from four folds' verdicts applied to the
# fifth, 71 near misses): caught 0.62 / 0.72 / 0.76 / 0.80 / 0.85 at caps of 5 / 10 / 12 / 15 / 20%;
# 12% is the lowest cap clearing the 70% target by one standard error (±5 points).
MAX_ANSWERABLE_PARTIAL = 0.12
DECISIVE_FILE = "decisive.tsv"


def answer_sentences(entry: FaqEntry) -> list[str]:
    pieces = [p.strip() for p in SENTENCE_RE.findall(entry.answer)]
    return [p for p in pieces if len(p) >= MIN_SENTENCE_CHARS][:MAX_SENTENCES]


def write_inputs(folder: Path, entries: list[FaqEntry], aliases: Aliases, tokenizer: Tokenizer, embed,
                 decisive_path: Path) -> int:
    """Field tokens, answer-sentence and search-key vectors; `embed(texts)` returns passage vectors.
    Returns the count of answer sentences."""
    folder.mkdir(parents=True, exist_ok=True)
    fields = {
        "question": [tokenizer.tokens(e.question) for e in entries],
        "answer": [tokenizer.tokens(e.answer) for e in entries],
        "keys": [tokenizer.tokens(" ".join(aliases.of(e))) for e in entries],
    }
    keys = [(row, key) for row, entry in enumerate(entries) for key in aliases.of(entry)]
    key_vectors = embed([k for _, k in keys]) if keys else np.zeros((0, 1), dtype=np.float32)
    np.save(folder / "key_vectors.npy", np.asarray(key_vectors, dtype=np.float32), allow_pickle=False)
    np.save(folder / "key_rows.npy", np.array([r for r, _ in keys], dtype=np.int32), allow_pickle=False)
    (folder / "fields.json").write_text(json.dumps(fields, ensure_ascii=False), encoding="utf-8")
    texts, rows = [], []
    for row, entry in enumerate(entries):
        for sentence in answer_sentences(entry):
            texts.append(sentence)
            rows.append(row)
    vectors = embed(texts) if texts else np.zeros((0, 1), dtype=np.float32)
    np.save(folder / "sentence_vectors.npy", np.asarray(vectors, dtype=np.float32), allow_pickle=False)
    np.save(folder / "sentence_rows.npy", np.array(rows, dtype=np.int32), allow_pickle=False)
    if decisive_path.exists():
        shutil.copyfile(decisive_path, folder / DECISIVE_FILE)
    else:
        (folder / DECISIVE_FILE).write_text("", encoding="utf-8")
    return len(texts)


@dataclass
class Example:
    """One tuning query's candidates, their features and which of them answer it."""

    query: object  # LabelledQuery
    analysed: object  # AnalysedQuery
    named: str | None
    candidates: list[Candidate]
    features: np.ndarray
    labels: np.ndarray


def collect(searcher, queries) -> list[Example]:
    examples = []
    for labelled in queries:
        analysed, candidates, named = searcher.candidates(labelled.query)
        head = candidates[: searcher.reranker_depth]
        if not head:
            continue
        x = searcher.reranker.features(analysed, head, named)
        y = np.array([c.group in labelled.groups for c in head], dtype=np.int8)
        examples.append(Example(labelled, analysed, named, head, x, y))
    return examples


def memory_folds(examples: list[Example]) -> np.ndarray:
    """A fold per example (a seeded shuffle, stratified by kind): in training a query meets in memory
    neither itself nor its fold's queries. Not grouped by entry: a new query will meet tuning queries
    on its own entry, so the model learns how far to trust them."""
    folds = np.zeros(len(examples), dtype=np.int32)
    by_kind: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        by_kind.setdefault(e.query.kind, []).append(i)
    rng = np.random.default_rng(MEMORY_SEED)
    offset = 0
    for kind in sorted(by_kind):
        members = rng.permutation(by_kind[kind])
        folds[members] = (np.arange(len(members)) + offset) % FOLDS
        offset += len(members)
    return folds


def remember(reranker, examples: list[Example]) -> Memory:
    """Give the reranker the tuning queries as memory, and recompute each example's features out of
    fold: a query never meets itself or its fold's queries in memory, as a new query would not."""
    memory = Memory(np.stack([e.analysed.vector for e in examples]).astype(np.float32),
                    [list(e.query.groups) for e in examples], [list(e.query.near) for e in examples])
    reranker.data.memory = memory
    folds = memory_folds(examples)
    for i, e in enumerate(examples):
        e.features = reranker.features(e.analysed, e.candidates, e.named, exclude=np.flatnonzero(folds == folds[i]))
    return memory


def _target(example: Example) -> str:
    groups = example.query.groups or example.query.near
    return groups[0] if groups else "none:" + hashlib.sha1(example.query.query.encode()).hexdigest()[:8]


def _fit(examples: list[Example]):
    import lightgbm

    x = np.vstack([e.features for e in examples])
    y = np.concatenate([e.labels for e in examples])
    return lightgbm.LGBMClassifier(**PARAMS).fit(x, y)


def out_of_fold(examples: list[Example]) -> list[np.ndarray]:
    """Each query's candidate probabilities from a model fitted without its target entry."""
    from sklearn.model_selection import GroupKFold

    targets = [_target(e) for e in examples]
    folds = min(FOLDS, len(set(targets)))
    predicted: list[np.ndarray] = [np.zeros(0)] * len(examples)
    for train, test in GroupKFold(n_splits=folds).split(examples, groups=targets):
        model = _fit([examples[i] for i in train])
        for i in test:
            predicted[i] = model.predict_proba(examples[i].features)[:, 1]
    return predicted


def ranking_figures(examples: list[Example], probabilities: list[np.ndarray]) -> dict:
    answerable = [(e, p) for e, p in zip(examples, probabilities) if e.query.in_corpus]
    top1 = np.array([e.labels[int(np.argmax(p))] == 1 for e, p in answerable])
    english = np.array([e.analysed.english for e, _ in answerable])
    rr = []
    for e, p in answerable:
        order = np.argsort(-p, kind="stable")
        hits = [rank for rank, i in enumerate(order[:10], 1) if e.labels[i]]
        rr.append(1 / hits[0] if hits else 0.0)
    return {"recall@1": round(float(np.mean(top1)), 4), "mrr@10": round(float(np.mean(rr)), 4),
            "english_recall@1": round(float(np.mean(top1[english])), 4) if english.any() else None}


def verdict_rows(examples: list[Example], probabilities: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    rows, labels = [], []
    for e, p in zip(examples, probabilities):
        order = np.argsort(-p, kind="stable")
        rows.append(verdict_row(p[order[:2]].tolist(), e.features[order[0]]))
        labels.append(0 if e.query.in_corpus else 1 if e.query.near_miss else 2)
    return np.array(rows), np.array(labels)


def verdict_thresholds(examples: list[Example], rows: np.ndarray,
                       labels: np.ndarray) -> tuple[float, float, float, dict]:
    """Out-of-fold verdict probabilities → the lowest thresholds that keep answerable queries answered:
    abstain, flag partial, and doubt (flag partial on P(abstain))."""
    import lightgbm
    from sklearn.model_selection import GroupKFold

    targets = [_target(e) for e in examples]
    judged = np.zeros((len(rows), len(VERDICTS)))
    for train, test in GroupKFold(n_splits=min(FOLDS, len(set(targets)))).split(rows, groups=targets):
        judged[test] = lightgbm.LGBMClassifier(**VERDICT_PARAMS).fit(rows[train], labels[train]).predict_proba(rows[test])
    answerable = labels == 0
    grid = np.round(np.linspace(0.02, 0.98, 49), 2)
    def lowest(cap: float) -> float:
        return min((t for t in grid if (judged[answerable, 2] >= t).mean() <= cap), default=1.0)

    abstain_at, doubt_at = lowest(MAX_WRONGLY_ABSTAINED), lowest(MAX_WRONGLY_DOUBTED)
    abstained = judged[:, 2] >= abstain_at
    partial_at = min((t for t in grid if ((judged[:, 1] >= t) & ~abstained)[answerable].mean()
                      <= MAX_ANSWERABLE_PARTIAL), default=1.0)
    flagged = ~abstained & ((judged[:, 1] >= partial_at) | (judged[:, 2] >= doubt_at))
    unanswerable = labels == 2
    figures = {
        "wrongly_abstained": round(float(abstained[answerable].mean()), 4),
        "answerable_partial": round(float(flagged[answerable].mean()), 4),
        "abstention_recall": round(float(abstained[unanswerable].mean()), 4) if unanswerable.any() else None,
        "ooc_handled": round(float((abstained | flagged)[unanswerable].mean()), 4) if unanswerable.any() else None,
        "near_handled": round(float((abstained | flagged)[labels == 1].mean()), 4) if (labels == 1).any() else None,
    }
    return float(abstain_at), float(partial_at), float(doubt_at), figures


def train(examples: list[Example]) -> RerankModel:
    if not examples or not any(e.labels.any() for e in examples):
        raise RerankError("no tuning query has its answer among the candidates: cannot train the reranker")
    import lightgbm

    oof = out_of_fold(examples)
    rows, labels = verdict_rows(examples, oof)
    abstain_at, partial_at, doubt_at, verdict_cv = verdict_thresholds(examples, rows, labels)
    model = _fit(examples)
    verdict = lightgbm.LGBMClassifier(**VERDICT_PARAMS).fit(rows, labels)
    info = {
        "trained_on": f"tune split, {len(examples)} queries",
        "params": {k: v for k, v in PARAMS.items() if k != "verbose"},
        "cv": {"folds": FOLDS, "grouped_by": "target entry", **ranking_figures(examples, oof), **verdict_cv},
        "library": f"lightgbm {metadata.version('lightgbm')}",
    }
    return RerankModel(model.booster_, verdict.booster_, abstain_at, partial_at, doubt_at, info)


def write_model(folder: Path, model: RerankModel | None) -> None:
    """The model (None: the build has no labelled tuning queries) and the folder's manifest of hashes."""
    if model is not None:
        (folder / "model.json").write_text(json.dumps(model.to_json(), ensure_ascii=False, indent=1) + "\n",
                                           encoding="utf-8")
        (folder / "model.txt").write_text(model.booster.model_to_string(), encoding="utf-8")
        (folder / "verdict.txt").write_text(model.verdict.model_to_string(), encoding="utf-8")
    names = [name for name in (*FILES, DECISIVE_FILE) if (folder / name).exists() or model is not None]
    hashes = {name: _sha256(folder / name) for name in names}
    manifest = {"version": MODEL_VERSION, "features": list(FEATURES), "model": model is not None, "files": hashes}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


def verify_folder(folder: Path) -> dict:
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RerankError(f"no readable rerank manifest in {folder}: rebuild with `faq build`") from exc
    if manifest.get("version") != MODEL_VERSION:
        raise RerankError(f"the rerank files in {folder} are from another version: rebuild with `faq build`")
    for name, expected in manifest.get("files", {}).items():
        path = folder / name
        if not path.exists() or _sha256(path) != expected:
            raise RerankError(f"rerank file {path} is missing or damaged: rebuild with `faq build`")
    return manifest


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_into_build(settings, index, embedder) -> str:
    """Learn the model from the labelled queries' tune split and store it in the build; returns a log line."""
    from assistant.glossary import Glossary
    from assistant.labels import load_queries
    from assistant.rerank import FOLDER, Reranker
    from assistant.search import Searcher

    folder = index.path / FOLDER
    path = settings.eval_queries_path
    tune = [q for q in load_queries(path, index.entries) if q.split == "tune" and q.usable] if path.exists() else []
    if not tune:
        write_model(folder, None)
        return "rerank: no labelled tuning queries, the build searches without a reranker"
    glossary = Glossary.load(settings.glossary_path)
    searcher = Searcher(index, embedder, glossary, reranker=Reranker.load(index, glossary, trained=False))
    examples = collect(searcher, tune)
    memory = remember(searcher.reranker, examples)
    np.save(folder / "memory_vectors.npy", memory.vectors, allow_pickle=False)
    (folder / "memory.json").write_text(json.dumps(memory.to_json(), ensure_ascii=False), encoding="utf-8")
    model = train(examples)
    write_model(folder, model)
    cv = model.info["cv"]
    return (f"rerank: trained on {len(tune)} tuning queries (grouped {FOLDS}-fold CV "
            f"{cv}); abstain at P(abstain) ≥ {model.abstain_at}, partial at P(partial) ≥ {model.partial_at} "
            f"or P(abstain) ≥ {model.doubt_at}")
