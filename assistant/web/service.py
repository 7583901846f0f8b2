"""What the API and the UI share: one loaded searcher, the feedback store, the embed allow-list."""

from __future__ import annotations

from dataclasses import dataclass, field

from assistant.config import Settings
from assistant.feedback import FeedbackStore
from assistant.search import SearchResult, Searcher, open_searcher

VENDOR_LABELS = {"tencent": "Tencent Cloud 腾讯云", "aliyun": "Alibaba Cloud 阿里云"}


@dataclass
class Service:
    settings: Settings
    searcher: Searcher
    feedback: FeedbackStore
    allow_embed: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, settings: Settings, allow_embed: list[str] | None = None) -> "Service":
        searcher = open_searcher(settings)
        feedback = FeedbackStore(settings.data_dir / "feedback.sqlite3")
        return cls(settings, searcher, feedback, list(allow_embed or []))

    @property
    def build_id(self) -> str:
        return self.searcher.index.build_id

    def search(self, query: str, top_k: int = 5, vendor: str | None = None, edition: str | None = None,
               surface: str = "api") -> SearchResult:
        result = self.searcher.search(query, top_k=top_k, vendor=vendor or None, edition=edition or None)
        self.feedback.log_search(result.query, result.abstained, [h.entry.id for h in result.hits],
                                 self.build_id, surface)
        return result

    def edition_choices(self) -> list[tuple[str, str]]:
        seen: dict[str, str] = {}
        for entry in self.searcher.index.entries:
            seen.setdefault(entry.doc, f"{VENDOR_LABELS.get(entry.vendor, entry.vendor)} · {entry.edition}")
        return [("latest 最新版", "latest"), ("all editions 全部版本", "all")] + [(v, k) for k, v in seen.items()]

    def vendor_choices(self) -> list[tuple[str, str]]:
        return [("all 全部", "")] + [(VENDOR_LABELS.get(v, v), v) for v in self.searcher.vendors]
