"""The reranker's LightGBM models compiled to machine code (lleaves), for serving.

LightGBM walks 300 small trees kept in separately allocated arrays; right after the query embedding has
swept the caches, each is a cache miss, and one prediction over 30 candidates costs 0.4 ms. The compiled
forest is one block of code: 0.1 ms. It returns LightGBM's probabilities (to 1e-15).

The build compiles both models for a generic CPU of its machine's architecture and stores the objects beside
the model texts; a machine that cannot run them (another architecture, other compiler versions) compiles
the texts when it loads them, and one where compiling fails predicts with LightGBM.
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

import numpy as np

OBJECTS = {"model.txt": "model.o", "verdict.txt": "verdict.o"}  # model text → its compiled object


def target() -> dict[str, str]:
    """What a compiled object runs on: the machine's architecture and the compiler's versions."""
    return {"machine": platform.machine(), "system": platform.system(),
            "lleaves": metadata.version("lleaves"), "llvmlite": metadata.version("llvmlite")}


class CompiledForest:
    """One compiled model: `predict(x)` as LightGBM's Booster.predict (probabilities, one row per row of x)."""

    def __init__(self, model_file: Path, object_file: Path | None) -> None:
        """Compile `model_file`; `object_file`: load it when it exists, else write the compiled object there."""
        import lleaves

        self._model = lleaves.Model(model_file=str(model_file))
        self._model.compile(cache=str(object_file) if object_file else None,
                            target_cpu="generic", target_cpu_features="")

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._model.predict(np.ascontiguousarray(x, dtype=np.float64), n_jobs=1)


def compile_into(folder: Path) -> dict[str, str] | None:
    """Compile the folder's model texts into objects beside them; returns their target (None: compiling failed,
    the models are served by LightGBM)."""
    try:
        for text, compiled in OBJECTS.items():
            (folder / compiled).unlink(missing_ok=True)
            CompiledForest(folder / text, folder / compiled)
        return target()
    except (ImportError, RuntimeError, OSError, ValueError):
        for compiled in OBJECTS.values():
            (folder / compiled).unlink(missing_ok=True)
        return None


def load_compiled(folder: Path, compiled_for: dict | None) -> tuple[CompiledForest, CompiledForest] | None:
    """The folder's two models compiled: from the stored objects when they were compiled for this machine,
    else from the texts now; None when this machine cannot compile them."""
    try:
        stored = compiled_for == target() and all((folder / name).exists() for name in OBJECTS.values())
        candidate, verdict = (CompiledForest(folder / text, folder / compiled if stored else None)
                              for text, compiled in OBJECTS.items())
    except (ImportError, RuntimeError, OSError, ValueError):
        return None
    return candidate, verdict
