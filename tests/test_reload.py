"""A server that follows its index and survives its workers: a real `faq serve --workers 2` in a child
process, rebuilt under it, its build folder deleted, one of its workers killed with SIGKILL."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from assistant.config import PROJECT_ROOT
from test_build_lock import published, run_build


def _children(pid: int) -> set[int]:
    """The worker processes of the supervisor `pid` (not multiprocessing's resource tracker)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in command:
                found.add(int(entry.name))
    return found


def _wait_for(condition, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(message)


@pytest.fixture(scope="module")
def served(tmp_path_factory, cache_dir):
    index_dir = tmp_path_factory.mktemp("index")
    assert run_build(index_dir, cache_dir).returncode == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "FAQ_INDEX_DIR": str(index_dir), "FAQ_CACHE_DIR": str(cache_dir)}
    server = subprocess.Popen(
        [sys.executable, "-m", "assistant", "serve", "--port", str(port), "--workers", "2",
         "--data-dir", str(tmp_path_factory.mktemp("data"))],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: server.poll() is None and httpx.get(url + "/readyz", timeout=2).status_code == 200, 180,
                  "the server did not start")
        _wait_for(lambda: len(_children(server.pid)) >= 2, 60, "two workers did not start")
        yield {"url": url, "index_dir": index_dir, "cache_dir": cache_dir, "server": server}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _search(url: str) -> int:
    try:
        return httpx.get(url + "/api/search", params={"q": "签名申请被驳回怎么办"}, timeout=60).status_code
    except httpx.HTTPError:
        return -1


def test_a_new_build_is_served_without_a_restart_and_requests_keep_succeeding(served):
    url, index_dir = served["url"], served["index_dir"]
    old = httpx.get(url + "/healthz").json()["build_id"]
    statuses: list[int] = []
    stop = threading.Event()

    def keep_searching():
        while not stop.is_set():
            statuses.append(_search(url))

    searching = threading.Thread(target=keep_searching)
    searching.start()
    try:
        assert run_build(index_dir, served["cache_dir"]).returncode == 0
        new = published(index_dir)
        assert new != old
        # Both workers move to the new build (each answers some of these requests).
        _wait_for(lambda: all(httpx.get(url + "/healthz").json()["build_id"] == new for _ in range(6)), 60,
                  "the server did not pick up the new build")
        hit = httpx.get(url + "/api/search", params={"q": "1014"}).json()
        assert hit["build_id"] == new
    finally:
        stop.set()
        searching.join()
    assert statuses and set(statuses) == {200}, set(statuses)


def test_healthz_and_readyz_fail_with_json_when_the_served_build_is_deleted(served):
    url, index_dir = served["url"], served["index_dir"]
    build = index_dir / "builds" / published(index_dir)
    backup = index_dir / "backup"
    shutil.copytree(build, backup)
    shutil.rmtree(build)
    try:
        health = httpx.get(url + "/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "unusable" and "run `faq build`" in health.json()["error"]
        assert "content-security-policy" in health.headers
        ready = httpx.get(url + "/readyz")
        assert ready.status_code == 503 and ready.json()["ready"] is False
    finally:
        backup.rename(build)
    assert _wait_for(lambda: httpx.get(url + "/readyz").status_code == 200, 10, "not ready again")


def test_a_killed_worker_is_replaced_and_its_requests_end_with_an_error_not_a_hang(served):
    url, server = served["url"], served["server"]
    workers = _children(server.pid)
    assert len(workers) >= 2
    victim = sorted(workers)[0]
    with ThreadPoolExecutor(max_workers=20) as pool:
        pending = [pool.submit(_search, url) for _ in range(60)]
        time.sleep(0.05)
        os.kill(victim, signal.SIGKILL)
        started = time.monotonic()
        results = [future.result(timeout=90) for future in pending]  # each one ends: 200 or a dropped connection
    assert time.monotonic() - started < 90
    assert set(results) <= {200, -1} and results.count(200) > 0
    replaced = _wait_for(lambda: (c := _children(server.pid)) and victim not in c and len(c) >= 2 and c, 60,
                         "the dead worker was not replaced")
    assert victim not in replaced
    assert _wait_for(lambda: all(_search(url) == 200 for _ in range(6)), 60, "the server did not recover")


def test_the_holder_swaps_in_the_background_and_old_requests_keep_their_searcher(built, tmp_path, cache_dir):
    from assistant.index import build_index
    from assistant.web.service import SearcherHolder

    settings = dataclasses.replace(built, index_dir=tmp_path / "index")
    shutil.copytree(built.index_dir, settings.index_dir)
    holder = SearcherHolder(settings, check_every=3600)
    in_flight = holder.current()
    assert in_flight.store.preloading is not None  # a server warms the build it opens
    build_index(settings, log=lambda message: None)
    assert holder.current() is in_flight  # not checked yet: no request waits for a load
    status = holder.status()  # /healthz checks the pointer now
    assert status["newer_published"] is True and status["build_id"] == in_flight.index.build_id
    holder.wait_loaded()
    assert holder.current().index.build_id == published(settings.index_dir) != in_flight.index.build_id
    assert holder.current().embedder is in_flight.embedder  # one batching embedder across builds
    assert holder.current().store.preloading is not None
    assert in_flight.search("签名申请被驳回怎么办").hits  # the old searcher still answers


def _listening_sockets(port: int) -> int:
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:] + Path("/proc/net/tcp6").read_text().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A")


def test_each_worker_listens_on_its_own_socket_and_a_second_server_on_the_port_is_refused(served):
    port = int(served["url"].rsplit(":", 1)[1])
    # One socket per worker: the kernel spreads connections over them, none takes a whole burst.
    assert _listening_sockets(port) == len(_children(served["server"].pid)) == 2
    env = {**os.environ, "FAQ_INDEX_DIR": str(served["index_dir"]), "FAQ_CACHE_DIR": str(served["cache_dir"])}
    second = subprocess.run([sys.executable, "-m", "assistant", "serve", "--port", str(port), "--workers", "2"],
                            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 2 and "already in use" in second.stderr and "Traceback" not in second.stderr
