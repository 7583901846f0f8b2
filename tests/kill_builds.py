"""`kill -9` at random points of `faq build`, the publish step included; after each kill the previous build
(or the one just published) must load, and the next complete build must leave no staging folder and embed
only what the killed builds had not cached.

    python tests/kill_builds.py --kills 10
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from assistant.config import PROJECT_ROOT, Settings  # noqa: E402
from assistant.index import load_index  # noqa: E402
from test_build_lock import FAQ, cached_rows, faq_env, published, run_build  # noqa: E402


def _kill_when(build: subprocess.Popen, index_dir: Path, point: str, delay: float, cache: Path, rows: int) -> str:
    """Kill after `delay` seconds; or (publish) the moment the new build folder appears; or (embedding) once
    the cache holds `rows` vectors."""
    builds = index_dir / "builds"
    before = {p.name for p in builds.iterdir()}
    deadline = time.monotonic() + (delay if point == "random" else 600)
    while time.monotonic() < deadline and build.poll() is None:
        if point == "publish" and {p.name for p in builds.iterdir() if not p.name.startswith(".")} - before:
            break
        if point == "embedding" and cached_rows(cache) >= rows:
            break
        time.sleep(0.002 if point == "publish" else 0.05)
    if build.poll() is not None:
        return "finished before the kill"
    os.kill(build.pid, signal.SIGKILL)
    build.wait()
    return f"killed at {point}" + (f" after {delay:.1f} s" if point == "random" else "")


def kill_builds(kills: int, work: Path, warm_cache: Path, seed: int = 1) -> dict:
    rng = random.Random(seed)
    index_dir, cold_cache = work / "index", work / "cold-cache"
    settings = dataclasses.replace(Settings.from_env(), index_dir=index_dir, cache_dir=warm_cache)
    started = time.monotonic()
    assert run_build(index_dir, warm_cache).returncode == 0
    warm_seconds = time.monotonic() - started
    events = []
    for number in range(kills):
        previous = published(index_dir)
        cold = number < kills // 3  # the first third kill builds that are still embedding
        point = "embedding" if cold else "publish" if number % 4 == 3 else "random"
        delay = rng.uniform(0.5, warm_seconds)
        rows = cached_rows(cold_cache) + rng.randint(16, 120)
        build = subprocess.Popen([*FAQ, "build"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 cwd=PROJECT_ROOT, env=faq_env(index_dir, cold_cache if cold else warm_cache))
        what = _kill_when(build, index_dir, point, delay, cold_cache, rows)
        if point == "embedding":
            what += f" ({cached_rows(cold_cache)} vectors cached)"
        served = load_index(settings).build_id  # raises if the kill left nothing loadable
        assert served in (previous, published(index_dir)), (served, previous)
        events.append({"kill": number + 1, "what": what, "cache": "cold" if cold else "warm",
                       "serves": "previous build" if served == previous else "the new build (published before the kill)",
                       "staging_left": len(list((index_dir / "builds").glob(".staging-*"))),
                       "cold_cache_rows": cached_rows(cold_cache)})
    kept = cached_rows(cold_cache)
    resumed = run_build(index_dir, cold_cache)
    assert resumed.returncode == 0, resumed.stderr
    total = cached_rows(cold_cache)
    line = next(line for line in resumed.stderr.splitlines() if line.startswith("embedded "))
    return {
        "kills": events,
        "always_loadable": True,
        "staging_after_next_build": len(list((index_dir / "builds").glob(".staging-*"))),
        "cached_before_resume": kept, "cache_after_resume": total, "resumed_build_says": line,
        "resume_embedded_only_uncached": line.startswith(f"embedded {total - kept} new texts"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="faq-kills-") as work:
        report = kill_builds(args.kills, Path(work), Settings.from_env().cache_dir, args.seed)
    print(json.dumps(report, ensure_ascii=False, indent=1))
    return 0 if report["staging_after_next_build"] == 0 and report["resume_embedded_only_uncached"] else 1


if __name__ == "__main__":
    sys.exit(main())
