"""What the API and the UI share: the searcher of the published build (followed without a restart),
the feedback store, the embed allow-list."""

from __future__ import annotations

import gc
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from assistant.config import Settings
from assistant.embed_batching import BatchingEmbedder, FairTurns
from assistant.errors import AssistantError
from assistant.feedback import FeedbackStore, open_feedback
from assistant.index import published_build_id
from assistant.search import SearchResult, Searcher, open_searcher
from assistant.web.security import embed_origins

VENDOR_LABELS = {"tencent": "Tencent Cloud 腾讯云", "aliyun": "Alibaba Cloud 阿里云"}
CHECK_EVERY_SECONDS = 2.0
OLD_STORE_GRACE_SECONDS = 60.0


class SearcherHolder:
    """The searcher of the build `current` points to. `current()` never waits for a load: at most every
    `check_every` seconds it looks at the pointer and opens a newer build in the background, then swaps it
    in with one assignment; requests already holding the old searcher finish on it."""

    def __init__(self, settings: Settings, factory: Callable[[Settings], Searcher] = open_searcher,
                 check_every: float = CHECK_EVERY_SECONDS) -> None:
        self.settings = settings
        self.factory = factory
        self.check_every = check_every
        self.turns = FairTurns()
        self._batched: BatchingEmbedder | None = None
        self._searcher = self._open()
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._loading: threading.Thread | None = None
        self._failed: str | None = None  # a published build that did not load; retried when the pointer moves
        self.last_error: str | None = None

    def _open(self) -> Searcher:
        searcher = self.factory(self.settings)
        # One batching embedder for every build made with the same model, so a swap keeps its batches and LRU.
        if self._batched is None or self._batched.id != searcher.embedder.id:
            self._batched = BatchingEmbedder(searcher.embedder, turns=self.turns)
        searcher.embedder = self._batched
        searcher.store.warm()
        return searcher

    def current(self) -> Searcher:
        self.refresh(force=False)
        return self._searcher

    @property
    def embedder(self) -> BatchingEmbedder | None:
        return self._batched

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < self.check_every:
            return
        with self._lock:
            if (not force and now - self._checked < self.check_every) or self.loading:
                return
            self._checked = now
            published = self._published()
            if published is None or published in (self._searcher.index.build_id, self._failed):
                return
            self._loading = threading.Thread(target=self._load, args=(published,), name="index-reload", daemon=True)
            self._loading.start()

    @property
    def loading(self) -> bool:
        return self._loading is not None and self._loading.is_alive()

    def _load(self, published: str) -> None:
        try:
            searcher = self._open()
        except AssistantError as exc:
            self._failed, self.last_error = published, str(exc)
            return
        self._failed, self.last_error = None, None
        previous, self._searcher = self._searcher, searcher
        settle_heap()
        if self.settings.database_url:  # its connection pool, once requests still on it have finished
            threading.Timer(OLD_STORE_GRACE_SECONDS, previous.store.close).start()

    def _published(self) -> str | None:
        """The build id published now: `index/current`, or the database's `faq.published`."""
        if self.settings.database_url:
            return self._searcher.store.published_now()
        return published_build_id(self.settings.index_dir)

    def wait_loaded(self, timeout: float = 60.0) -> None:
        thread = self._loading
        if thread is not None:
            thread.join(timeout)

    def status(self) -> dict:
        """The build served, the build published, and whether the served one is still on disk."""
        self.refresh(force=True)
        searcher = self._searcher
        serving = searcher.index.build_id
        published = self._published()
        if self.settings.database_url:
            usable = searcher.store.usable()
        else:
            usable = (searcher.index.path / "manifest.json").is_file()
        return {
            "build_id": serving,
            "published_build_id": published,
            "newer_published": published is not None and published != serving,
            "usable": usable,
            "reloading": self.loading,
            "reload_error": self.last_error,
        }


def settle_heap() -> None:
    """Moves what is loaded (the index, the app: long-lived objects by the hundred thousand) out of the
    collector's sight, so that a full collection, which would walk all of it, stays a short pause. After a
    reload, what the previous build left is collected first."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


@dataclass
class Service:
    settings: Settings
    holder: SearcherHolder
    feedback: FeedbackStore
    allow_embed: list[str] = field(default_factory=list)
    # Searches are logged by one background thread: a busy SQLite (another worker writing, a slow fsync)
    # never holds up an answer.
    search_log: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "search-log"))

    @classmethod
    def open(cls, settings: Settings, allow_embed: list[str] | None = None) -> "Service":
        origins = embed_origins(allow_embed)  # EmbedOriginError before anything is loaded
        holder = SearcherHolder(settings)
        feedback = open_feedback(settings)
        return cls(settings, holder, feedback, origins)

    @property
    def searcher(self) -> Searcher:
        """The current searcher; take it once per request so one request sees one build."""
        return self.holder.current()

    @property
    def build_id(self) -> str:
        return self.searcher.index.build_id

    def turn(self):
        """Hold for the whole of a request that searches: requests run their Python oldest first."""
        return self.holder.turns.turn()

    def search(self, query: str, top_k: int = 5, vendor: str | None = None, edition: str | None = None,
               surface: str = "api", searcher: Searcher | None = None) -> SearchResult:
        searcher = searcher or self.searcher
        with self.turn():
            result = searcher.search(query, top_k=top_k, vendor=vendor or None, edition=edition or None)
        self.search_log.submit(self.feedback.log_search, result.query, result.abstained,
                               [h.entry.id for h in result.hits], searcher.index.build_id, surface)
        return result

    def edition_choices(self) -> list[tuple[str, str]]:
        seen: dict[str, str] = {}
        for entry in self.searcher.documents():
            seen.setdefault(entry.doc, f"{VENDOR_LABELS.get(entry.vendor, entry.vendor)} · {entry.edition}")
        return [("latest 最新版", "latest"), ("all editions 全部版本", "all")] + [(v, k) for k, v in seen.items()]

    def vendor_choices(self) -> list[tuple[str, str]]:
        return [("all 全部", "")] + [(VENDOR_LABELS.get(v, v), v) for v in self.searcher.vendors]
