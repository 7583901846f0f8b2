"""Abstention: is the best hit an answer, or only the closest of unrelated entries?

A logistic model over the evidence of one search: how high and how far ahead the best
dense match is, whether BM25 agrees, whether the query's words are words of the corpus,
whether an error code or API name matched. Fitted on the labelled queries by `faq eval --fit`
and stored per embedder in `assistant/abstention.json` (cosines differ between models).
"""

from __future__ import annotations

import json
import math
from dataclasses import astuple, dataclass
from pathlib import Path

import numpy as np

WEIGHTS_PATH = Path(__file__).with_name("abstention.json")
FEATURES = (
    "dense_top", "dense_margin", "dense_z", "offtopic_margin", "bm25_top", "bm25_share", "exact", "agree", "known_share",
)


@dataclass(frozen=True)
class Evidence:
    dense_top: float
    dense_margin: float
    dense_z: float
    offtopic_margin: float  # best entry's cosine minus the best off-topic question's
    bm25_top: float
    bm25_share: float
    exact: bool
    agree: bool
    known_share: float

    @classmethod
    def empty(cls) -> "Evidence":
        return cls(0.0, 0.0, 0.0, -1.0, 0.0, 0.0, False, False, 0.0)

    def features(self) -> np.ndarray:
        values = list(astuple(self))
        values[FEATURES.index("bm25_top")] = math.log1p(self.bm25_top)
        return np.array(values, dtype=np.float64)


@dataclass
class AbstentionModel:
    weights: np.ndarray
    bias: float
    mean: np.ndarray
    scale: np.ndarray
    threshold: float = 0.5
    fitted_on: str = "hand-set defaults"

    def confidence(self, evidence: Evidence) -> float:
        """Probability that the best hit answers the query."""
        if evidence.exact:
            return 1.0
        z = (evidence.features() - self.mean) / self.scale
        return float(1.0 / (1.0 + math.exp(-(z @ self.weights + self.bias))))

    @classmethod
    def default(cls, embedder_id: str | None = None) -> "AbstentionModel":
        stored = _stored()
        if embedder_id and embedder_id in stored:
            return cls.from_json(stored[embedder_id])
        if stored.get("default"):
            return cls.from_json(stored["default"])
        # No fit for this embedder: answer when the best entry is closer than any off-topic question.
        n = len(FEATURES)
        weights = np.zeros(n)
        weights[FEATURES.index("offtopic_margin")] = 1.0
        return cls(weights, 0.0, np.zeros(n), np.full(n, 0.01), fitted_on="fallback: off-topic margin only")

    @classmethod
    def fit(cls, evidence: list[Evidence], answerable: list[bool], l2: float = 1.0, label: str = "") -> "AbstentionModel":
        """L2-regularised logistic regression by Newton's method (a few hundred rows: exact and fast)."""
        x = np.stack([e.features() for e in evidence])
        y = np.array(answerable, dtype=np.float64)
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale < 1e-9] = 1.0
        z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
        # Balance the classes: out-of-corpus queries are the minority.
        weight = np.where(y == 1, 0.5 / max(y.mean(), 1e-9), 0.5 / max(1 - y.mean(), 1e-9))
        beta = np.zeros(z.shape[1])
        penalty = np.full(z.shape[1], l2)
        penalty[-1] = 0.0
        for _ in range(50):
            p = 1.0 / (1.0 + np.exp(-(z @ beta)))
            gradient = z.T @ (weight * (p - y)) + penalty * beta
            hessian = (z * (weight * p * (1 - p))[:, None]).T @ z + np.diag(penalty)
            step = np.linalg.solve(hessian, gradient)
            beta -= step
            if np.abs(step).max() < 1e-8:
                break
        model = cls(beta[:-1], float(beta[-1]), mean, scale, 0.5, label)
        model.threshold = model._gap_threshold(evidence, answerable)
        return model

    def _gap_threshold(self, evidence: list[Evidence], answerable: list[bool]) -> float:
        """Midway between the 95th-percentile unanswerable confidence and the next answerable one above it.

        Balanced logistic weights put 0.5 close to the answerable queries; the gap is the safer cut.
        """
        confidences = np.array([self.confidence(e) for e in evidence])
        labels = np.array(answerable)
        if labels.all() or not labels.any():
            return 0.5
        high_unanswerable = float(np.quantile(confidences[~labels], 0.95))
        above = confidences[labels & (confidences > high_unanswerable)]
        return round((high_unanswerable + float(above.min())) / 2, 4) if len(above) else 0.5

    def to_json(self) -> dict:
        return {
            "features": list(FEATURES),
            "weights": [round(float(w), 6) for w in self.weights],
            "bias": round(self.bias, 6),
            "mean": [round(float(m), 6) for m in self.mean],
            "scale": [round(float(s), 6) for s in self.scale],
            "threshold": self.threshold,
            "fitted_on": self.fitted_on,
        }

    @classmethod
    def from_json(cls, data: dict) -> "AbstentionModel":
        if data.get("features") != list(FEATURES):
            return cls.default()
        return cls(
            np.array(data["weights"]), float(data["bias"]), np.array(data["mean"]), np.array(data["scale"]),
            float(data.get("threshold", 0.5)), data.get("fitted_on", ""),
        )


def _stored() -> dict:
    try:
        return json.loads(WEIGHTS_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def save_model(embedder_id: str, model: AbstentionModel) -> None:
    stored = _stored()
    stored[embedder_id] = model.to_json()
    WEIGHTS_PATH.write_text(json.dumps(stored, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
