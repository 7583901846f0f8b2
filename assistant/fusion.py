"""Fusion of the channels over the candidate rows, and edition grouping over integer group ids.

The weights travel with each build (its manifest's `fusion`), so an index is searched the way it was tuned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CHANNELS = ("exact", "bm25", "dense")
FUSIONS = ("rrf", "score")
# Channel weights, tuned on the old labelled queries (tune split of corpus/eval/labelled.jsonl) (`faq eval` shows the
# baselines beside them). BM25 alone is weak on paraphrases and English, so it nudges the dense ranking rather than leads it.
DEFAULTS = {
    "weights": {"exact": 1.0, "bm25": 0.15, "dense": 1.0},
    "rrf_weights": {"exact": 2.0, "bm25": 0.2, "dense": 1.0},
    "rrf_k": 10,
    # A query that names one vendor ("阿里云…") keeps the other vendor's entries, ranked lower.
    "vendor_not_named": 0.5,
    # A long message is searched whole (greetings dropped); its asking sentence adds this share of BM25 score.
    "ask_bm25": 0.5,
}


@dataclass(frozen=True)
class FusionParams:
    weights: dict = field(default_factory=lambda: dict(DEFAULTS["weights"]))
    rrf_weights: dict = field(default_factory=lambda: dict(DEFAULTS["rrf_weights"]))
    rrf_k: int = DEFAULTS["rrf_k"]
    vendor_not_named: float = DEFAULTS["vendor_not_named"]
    ask_bm25: float = DEFAULTS["ask_bm25"]

    @classmethod
    def from_manifest(cls, manifest: dict) -> "FusionParams":
        stored = {k: v for k, v in manifest.get("fusion", {}).items() if k in DEFAULTS}
        return cls(**{**DEFAULTS, **stored})

    def to_json(self) -> dict:
        return {"weights": self.weights, "rrf_weights": self.rrf_weights, "rrf_k": self.rrf_k,
                "vendor_not_named": self.vendor_not_named, "ask_bm25": self.ask_bm25}


def fuse_scores(channels: dict[str, np.ndarray], dense_low: float, params: FusionParams) -> np.ndarray:
    """Calibrated scores: each channel mapped to 0..1 over the allowed entries (its top candidate is the
    channel's best; dense is spread from `dense_low`, the sample's lowest cosine, as cosines bunch high), weighted."""
    fused = None
    for name, values in channels.items():
        values = values.astype(np.float64)
        fused = np.zeros_like(values) if fused is None else fused
        top = values.max(initial=0.0)
        if top <= 0:
            continue
        low = dense_low if name == "dense" else 0.0
        fused += params.weights[name] * (values - low) / max(top - low, 1e-9)
    return fused if fused is not None else np.zeros(0)


def fuse_ranks(rows: np.ndarray, ranks: dict[str, dict[int, int]], params: FusionParams) -> np.ndarray:
    """Reciprocal rank fusion over the candidate rows."""
    fused = np.zeros(len(rows), dtype=np.float64)
    for name, by_row in ranks.items():
        fused += np.array([params.rrf_weights[name] / (params.rrf_k + by_row[int(r)]) if int(r) in by_row else 0.0
                           for r in rows])
    return fused


def group_units(score_of: dict[int, float], groups: dict[int, list[int]]) -> list[tuple[list[int], float]]:
    """One unit per edition group: its allowed members (newest edition first) and its best member's score;
    ties keep the corpus order (the group's first row)."""
    units = [(members, max(score_of[r] for r in members), group_first) for group_first, members in groups.items()]
    units.sort(key=lambda unit: (-unit[1], unit[2]))
    return [(members, score) for members, score, _ in units]


def single_units(score_of: dict[int, float]) -> list[tuple[list[int], float]]:
    return [([row], score) for row, score in sorted(score_of.items(), key=lambda item: (-item[1], item[0]))]
