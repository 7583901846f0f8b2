"""`faq bench --load`: many concurrent clients against a server on this machine, beside the ceiling the
embedder allows (batched query embedding, measured in the same run)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from assistant.config import Settings
from assistant.embed_batching import MAX_BATCH
from assistant.errors import AssistantError
from assistant.labels import query_texts
from assistant.web.workers import default_workers, embedder_threads

MAX_CLIENTS = 200
MAX_SECONDS = 300.0
CEILING_QUERIES_PER_WORKER = 128


class LoadBenchError(AssistantError):
    """The load benchmark cannot run with these options."""


def check_options(clients: int, seconds: float, url: str | None) -> None:
    if not 1 <= clients <= MAX_CLIENTS:
        raise LoadBenchError(f"--clients must be between 1 and {MAX_CLIENTS}, got {clients}")
    if not 1 <= seconds <= MAX_SECONDS:
        raise LoadBenchError(f"--seconds must be between 1 and {MAX_SECONDS:g}, got {seconds:g}")
    if url is not None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if parts.scheme not in ("http", "https") or not loopback:
            raise LoadBenchError(f"--url must be an http(s) URL on this machine (127.0.0.1, ::1, localhost), got {url!r}")


def query_stream(settings: Settings, seed: int = 7) -> list[str]:
    """Distinct questions (pairs of labelled queries), so the server's query-vector cache cannot flatter it."""
    queries = query_texts(settings.eval_queries_path)
    pairs = [f"{a} {b}" for a in queries for b in queries[:40] if a != b]
    random.Random(seed).shuffle(pairs)
    return pairs


_start_together = None


def _join_ceiling_run(barrier) -> None:
    global _start_together
    _start_together = barrier


def _embed_for_ceiling(spec: str, queries: list[str], batch: int) -> tuple[int, float, float]:
    from assistant.embed import load_embedder

    embedder = load_embedder(spec)
    embedder.embed_queries(queries[:8])  # load and warm
    _start_together.wait()
    started = time.time()
    for start in range(0, len(queries), batch):
        embedder.embed_queries(queries[start : start + batch])
    return len(queries), started, time.time()


def measure_ceiling(settings: Settings, queries: list[str], workers: int, clients: int) -> float:
    """Queries per second of the bare embedder, in as many processes as the server has workers, started
    together, each with the server's threads and fed the batches its clients can form (clients per worker,
    at most the batcher's limit): no server configured like this can answer faster."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from assistant.index import _read_manifest, current_build

    spec = _read_manifest(current_build(settings.index_dir))["embedder"]["spec"]
    sample = queries[-CEILING_QUERIES_PER_WORKER * workers :]
    context = get_context("spawn")
    threads = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = embedder_threads(workers)  # inherited by the spawned processes
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_join_ceiling_run,
                                 initargs=(context.Barrier(workers),)) as pool:
            batch = max(1, min(MAX_BATCH, clients // workers))
            runs = list(pool.map(_embed_for_ceiling, [spec] * workers, [sample[i::workers] for i in range(workers)],
                                 [batch] * workers))
    finally:
        if threads is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = threads
    return sum(n for n, _, _ in runs) / (max(end for _, _, end in runs) - min(start for _, start, _ in runs))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def own_server(settings: Settings, workers: int | None):
    """`faq serve` in a child process, with a throw-away data directory; stopped on exit."""
    import httpx

    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="faq-bench-") as data_dir:
        command = [sys.executable, "-m", "assistant", "serve", "--port", str(port), "--data-dir", data_dir,
                   "--index", str(settings.index_dir)]
        if workers:
            command += ["--workers", str(workers)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   cwd=Path(__file__).resolve().parent.parent, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None:
                    raise LoadBenchError(f"the server did not start: {process.stderr.read().decode(errors='replace')[-800:]}")
                try:
                    if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise LoadBenchError("the server did not become ready within 120 s")
                time.sleep(0.2)
            yield url
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


async def _load(url: str, clients: int, seconds: float, queries: list[str]) -> tuple[list[float], Counter, float]:
    import httpx

    latencies: list[float] = []
    errors: Counter = Counter()  # HTTP status or exception name → count
    next_query = iter(range(clients, 10**9))  # after the warm-up queries: none is in the server's cache
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
        # Together, untimed: every client's own keep-alive connection, open before the clock starts.
        await asyncio.gather(*(http.get("/api/search", params={"q": warm}) for warm in queries[:clients]))
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            while time.perf_counter() < deadline:
                query = queries[next(next_query) % len(queries)]
                started = time.perf_counter()
                try:
                    response = await http.get("/api/search", params={"q": query})
                    failure = None if response.status_code == 200 else f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    failure = type(exc).__name__
                if failure is None:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    errors[failure] += 1

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - began
    return latencies, errors, elapsed


def run_load_bench(settings: Settings, clients: int = 50, seconds: float = 30.0, url: str | None = None,
                   as_json: bool = False, workers: int | None = None) -> int:
    check_options(clients, seconds, url)
    queries = query_stream(settings)
    with (own_server(settings, workers) if url is None else _given(url)) as target:
        split = (workers or default_workers(), clients)
        before = measure_ceiling(settings, queries, *split)
        latencies, error_kinds, elapsed = asyncio.run(_load(target.rstrip("/"), clients, seconds, queries))
        # Measured on both sides of the load, the better taken: other work on the machine only lowers it.
        ceiling = max(before, measure_ceiling(settings, queries, *split))
    errors = sum(error_kinds.values())
    requests = len(latencies) + errors
    kinds = ", ".join(f"{kind} ×{count}" for kind, count in error_kinds.most_common())
    p50, p95, p99 = (float(np.percentile(latencies, p)) if latencies else float("nan") for p in (50, 95, 99))
    report = {
        "clients": clients, "seconds": round(elapsed, 2), "requests": requests, "errors": errors,
        "throughput_rps": round(len(latencies) / elapsed, 2), "p50_ms": round(p50, 1), "p95_ms": round(p95, 1),
        "p99_ms": round(p99, 1), "ceiling_rps": round(ceiling, 2),
    }
    if as_json:
        print(json.dumps(report))
        if errors:
            print(f"faq bench: {errors} failed requests: {kinds}", file=sys.stderr)
        return 0
    print(f"{clients} clients for {elapsed:.1f} s against {target if url else 'a server started for this run'}")
    print(f"  requests {requests}, errors {errors}" + (f" ({kinds})" if errors else ""))
    print(f"  throughput {report['throughput_rps']:.1f} req/s; embedder-bound ceiling {ceiling:.1f} req/s "
          f"(batched query embedding, same run): {report['throughput_rps'] / ceiling:.2f} × ceiling")
    print(f"  latency p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms (p99/p50 {p99 / p50:.2f})")
    return 0


@contextmanager
def _given(url: str):
    yield url
