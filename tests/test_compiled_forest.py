"""The reranker's models compiled for serving (lleaves) answer as LightGBM does, are stored with the build for
its machine, and are compiled again, or left to LightGBM, where the stored objects cannot run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import assistant.compiled_forest as compiled_forest
from assistant.compiled_forest import OBJECTS, load_compiled, target
from assistant.labels import load_queries
from assistant.rerank import FOLDER, verdict_row


@pytest.fixture(scope="module")
def features(built, searcher):
    found = []
    for labelled in load_queries(built.eval_queries_path, searcher.index.entries)[::25]:
        analysed, candidates, named = searcher.candidates(labelled.query)
        if candidates:
            found.append(searcher.reranker.features(analysed, candidates[: searcher.reranker_depth], named))
    assert len(found) >= 20
    return found


def test_the_build_compiles_both_models_for_its_machine_and_search_serves_them(searcher):
    folder = searcher.index.path / FOLDER
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    model = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    assert set(OBJECTS.values()) <= set(manifest["files"])  # hashed, checked at load like the model texts
    assert model["compiled_for"] == target()
    assert searcher.reranker.model.compiled is not None


def test_the_compiled_models_give_lightgbms_probabilities_and_order(searcher, features):
    model = searcher.reranker.model
    for x in features:
        compiled, lightgbm = model.compiled[0].predict(x), model.booster.predict(x, num_threads=1)
        assert np.allclose(compiled, lightgbm, rtol=0, atol=1e-12)
        assert np.array_equal(np.argsort(-compiled, kind="stable"), np.argsort(-lightgbm, kind="stable"))
        row = verdict_row(sorted(lightgbm, reverse=True)[:2], x[int(np.argmax(lightgbm))])[None, :]
        assert np.allclose(model.compiled[1].predict(row), model.verdict.predict(row, num_threads=1), rtol=0, atol=1e-12)


def test_objects_compiled_for_another_machine_are_never_run_the_texts_are_compiled_again(searcher, features, tmp_path):
    folder = tmp_path / FOLDER
    shutil.copytree(searcher.index.path / FOLDER, folder)
    for name in OBJECTS.values():
        (folder / name).write_bytes(b"\x7fELF not for this machine")
    elsewhere = dict(target(), machine="riscv128")
    candidate, verdict = load_compiled(folder, elsewhere)
    assert np.array_equal(candidate.predict(features[0]), searcher.reranker.model.compiled[0].predict(features[0]))


def test_where_nothing_compiles_lightgbm_predicts(searcher, features, monkeypatch, tmp_path):
    def unavailable(*_args, **_kwargs):
        raise ImportError("no lleaves here")

    monkeypatch.setattr(compiled_forest, "CompiledForest", unavailable)
    folder = searcher.index.path / FOLDER
    assert load_compiled(folder, target()) is None
    shutil.copytree(folder, tmp_path / FOLDER)
    assert compiled_forest.compile_into(tmp_path / FOLDER) is None
    assert not any((tmp_path / FOLDER / name).exists() for name in OBJECTS.values())
    model = searcher.reranker.model
    served = model.probabilities(features[0])
    monkeypatch.setattr(model, "compiled", None)
    assert np.allclose(model.probabilities(features[0]), served, rtol=0, atol=1e-12)
