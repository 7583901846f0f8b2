"""One question in, one rendered turn out: follow-ups, filter checks, the search, its log and votes."""

from __future__ import annotations

import html
import threading
import uuid

from assistant.feedback import FeedbackError
from assistant.search import MAX_MESSAGE_CHARS, MAX_TOP_K, QueryError, SearchResult
from assistant.web.conversation import (active_filters, filter_conflict, hidden_answer_note, read_message,
                                        without_vendor_names)
from assistant.web.labels import LABELS, edition_name, language_of, vendor_name
from assistant.web.render import Turn, message_html, reply_text, turn_html, turn_language
from assistant.web.service import Service

MAX_ANSWERS_KEPT = 200  # per chat session, for votes and "search again without filters"
MAX_VOTE_ORDERS_KEPT = 10_000  # answers whose latest vote order is remembered, across sessions


class Answerer:
    def __init__(self, service: Service, source_base: str = "") -> None:
        self.service = service
        self.source_base = source_base
        self._vote_lock = threading.Lock()
        self._vote_order: dict[str, int] = {}  # answer id → order of the latest vote stored

    @property
    def entries(self):
        """One entry per document (vendor, edition): what the filter notes read, from the build being served."""
        return self.service.searcher.documents()

    def validate(self, message, vendor, edition, top_k, searcher=None) -> tuple[str, str | None, str | None, int]:
        """Checks input from any client; messages never repeat what was sent."""
        searcher = searcher or self.service.searcher
        if not isinstance(message, str) or not message.strip():
            raise QueryError("the message is empty: type a question, an error code or an API error name")
        if len(message) > MAX_MESSAGE_CHARS:
            raise QueryError(f"the message is longer than {MAX_MESSAGE_CHARS} characters")
        if isinstance(top_k, bool) or not isinstance(top_k, (int, float)) or int(top_k) != top_k \
                or not 1 <= top_k <= MAX_TOP_K:
            raise QueryError(f"top_k must be a whole number from 1 to {MAX_TOP_K}")
        if vendor not in (None, "", *searcher.vendors):
            raise QueryError(f"unknown vendor; valid: {', '.join(searcher.vendors)} (or empty for all)")
        if edition not in (None, "", *searcher.editions):
            raise QueryError(f"unknown edition; valid: {', '.join(searcher.editions)}")
        return message.strip(), vendor or None, edition or None, int(top_k)

    def _search(self, searcher, query: str, vendor: str | None, edition: str | None, top_k: int,
                surface: str) -> tuple[SearchResult, str]:
        """One search and its log line, both from `searcher` (one snapshot: a reload cannot mix two builds)."""
        result = searcher.search(query, top_k=top_k, vendor=vendor, edition=edition)
        answer_id = self.service.feedback.log_search(result.query, result.abstained,
                                                     [hit.entry.id for hit in result.hits], searcher.index.build_id,
                                                     surface)
        return result, answer_id

    def _hidden_answer(self, searcher, query: str, top_k: int, lang: str) -> str | None:
        """When filters leave nothing, what the unfiltered search would have answered."""
        wide = searcher.search(query, top_k=top_k)
        if not wide.hits or wide.abstained:
            return None
        best = wide.hits[0].entry
        label = f"{vendor_name(best.vendor_name, lang)} · {edition_name(best.edition, lang)}"
        return hidden_answer_note(best.question, label, lang)

    def _notices(self, asked: str, result: SearchResult, previous: str | None, vendor: str | None,
                 lang: str) -> list[str]:
        notices = []
        if previous:
            vendor = "" if not vendor else f"（{vendor_name(vendor, lang)}）" if lang == "zh" else f" ({vendor_name(vendor, lang)})"
            notices.append(f"结合上一个问题理解：“{previous}”{vendor}，搜索“{result.query}”" if lang == "zh"
                           else f"Read with your previous question “{previous}”{vendor}: searched “{result.query}”")
        if result.notices:
            searched = result.query if len(result.query) <= 90 else result.query[:90] + "…"
            notices.append(f"消息有 {len(asked)} 个字符，超过搜索上限；已搜索其中最有信息量的部分（错误码、问题）：“{searched}”"
                           if lang == "zh" else
                           f"Your message has {len(asked)} characters, more than a search takes; its most "
                           f"informative part (error codes, questions) was searched: “{searched}”")
        return notices

    def widen(self, answer_id: str, session: dict, top_k: int) -> tuple[str, str] | None:
        """Asks an earlier question again without its filters: the turn's HTML and the filter panel's note
        (the same words as the turn's notice: why the search was widened, and that the filters still hold)."""
        note = session.get("answers", {}).get(answer_id)
        if note is None:
            return None
        widened_from = {"vendor": note.get("vendor"), "edition": note.get("edition")}
        turn = self.answer(note["query"], session, None, "latest", top_k, shown_as=note["asked"],
                           widened_from=widened_from)
        return turn, self._widened_notice(widened_from, session["answers"][session["last"]]["lang"])

    def _widened_notice(self, widened_from: dict, lang: str) -> str:
        filters = active_filters(self.entries, widened_from.get("vendor"), widened_from.get("edition"), lang)
        shown = "; ".join(f"{k}: {v}" for k, v in filters.items()) if lang == "en" else \
            "；".join(f"{k}：{v}" for k, v in filters.items())
        return LABELS[lang]["widened"].format(filters=shown)

    def _vendor_warning(self, best, widened_from: dict | None, lang: str) -> str | None:
        """An answer found only after widening, from another vendor than the filter asked for."""
        wanted = (widened_from or {}).get("vendor")
        if best is None or not wanted or best.vendor == wanted:
            return None
        return LABELS[lang]["other_vendor"].format(actual=vendor_name(best.vendor_name, lang),
                                                   wanted=vendor_name(self._vendor_label(wanted) or wanted, lang))

    def answer(self, text: str, session: dict, vendor: str | None, edition: str | None, top_k: int = 5,
               shown_as: str | None = None, surface: str = "ui", widened_from: dict | None = None) -> str:
        """The HTML of one turn; `session` keeps what votes, widening and follow-ups need."""
        searcher = self.service.searcher  # one build for the whole turn
        text, vendor, edition, top_k = self.validate(text, vendor, edition, top_k, searcher)
        reading = read_message(text, None if shown_as else session.get("previous"), searcher.vendor_names)
        used_vendor = vendor or reading.vendor
        asked_lang = language_of(text)
        answers = session.setdefault("answers", {})
        if conflict := filter_conflict(searcher.documents(), used_vendor, edition, asked_lang):
            answer_id = uuid.uuid4().hex
            answers[answer_id] = {"query": reading.query, "asked": text, "entry_id": None, "lang": asked_lang,
                                  "vendor": used_vendor, "edition": edition}
            widen = LABELS[asked_lang]["widen"]
            return message_html(text, f'{html.escape(conflict)} <button type="button" class="faq-widen">{widen}'
                                      f'</button>', answer_id)
        result, answer_id = self._search(searcher, reading.query, used_vendor, edition, top_k, surface)
        answered = bool(result.hits) and not result.abstained
        best = result.hits[0].entry if answered else None
        lang = turn_language(result, text)
        widen = None
        if not answered and (used_vendor or edition not in (None, "latest")):
            widen = self._hidden_answer(searcher, reading.query, top_k, lang)
        turn = Turn(
            question=shown_as or text, answer_id=answer_id,
            filters=active_filters(searcher.documents(), used_vendor, edition, lang,
                                   implied=not vendor and bool(reading.vendor)),
            notices=self._notices(text, result, reading.previous, self._vendor_label(reading.vendor), lang)
            + ([self._widened_notice(widened_from, lang)] if widened_from else []), widen=widen,
            warning=self._vendor_warning(best, widened_from, lang),
            handover=self.service.settings.handover_text, handover_url=self.service.settings.handover_url,
            source_base=self.source_base,
        )
        answers[answer_id] = {"query": reading.query, "asked": text, "entry_id": best.id if best else None,
                              "lang": lang, "vendor": used_vendor, "edition": edition}
        session["last"] = answer_id
        for stale in list(answers)[:-MAX_ANSWERS_KEPT]:
            del answers[stale]
        session["previous"] = (without_vendor_names(reading.query, searcher.vendor_names)
                               if reading.vendor else reading.query)
        return turn_html(result, searcher.by_id, turn)

    def _vendor_label(self, vendor: str | None) -> str | None:
        return next((e.vendor_name for e in self.entries if e.vendor == vendor), None) if vendor else None

    def reply(self, message, vendor="", edition="latest", top_k=5) -> str:
        """The chat API's plain-text reply."""
        searcher = self.service.searcher
        message, vendor, edition, top_k = self.validate(message, vendor, edition, top_k, searcher)
        if conflict := filter_conflict(searcher.documents(), vendor, edition, language_of(message)):
            return conflict
        result, _ = self._search(searcher, message, vendor, edition, top_k, surface="chat-api")
        return reply_text(result, message)

    def vote(self, note: dict, answer_id: str, vote, comment, order=None) -> None:
        """Stores a vote; `order` (the browser's count of votes sent) keeps a late-arriving older vote
        from overwriting a newer one, as the chat's events run concurrently."""
        if vote not in (-1, 0, 1) or isinstance(vote, bool):
            raise FeedbackError("vote must be 1, -1 or 0")
        comment = comment if isinstance(comment, str) else None
        order = order if isinstance(order, int) and not isinstance(order, bool) else None
        with self._vote_lock:
            if order is not None:
                if order < self._vote_order.get(answer_id, -1):
                    return
                self._vote_order.pop(answer_id, None)
                self._vote_order[answer_id] = order
                for stale in list(self._vote_order)[:-MAX_VOTE_ORDERS_KEPT]:
                    del self._vote_order[stale]
            self.service.feedback.record_vote(answer_id, note["query"], note["entry_id"], int(vote), comment,
                                              self.service.build_id, surface="ui")

    def reset_note(self, edition: str | None, vendor: str | None) -> str:
        """Why the edition filter went back to "latest" when the vendor changed."""
        doc = next((e for e in self.entries if e.doc == edition), None)
        chosen = next((e.vendor_name for e in self.entries if e.vendor == vendor), "")
        if doc is None:
            return ""
        return (f"“{doc.edition}” is {vendor_name(doc.vendor_name, 'en')}'s, not {vendor_name(chosen, 'en')}'s: "
                f"the edition filter is back to latest. · “{edition_name(doc.edition, 'zh')}”属于"
                f"{vendor_name(doc.vendor_name, 'zh')}，不属于{vendor_name(chosen, 'zh')}：版本筛选已改回最新版。")
