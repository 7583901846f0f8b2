"""GET /source/{entry_id}: the exact lines of the bundled corpus file an entry was read from.

Only files the published build was made from are served (their names come from the build's
manifest, never from the request); every line is escaped."""

from __future__ import annotations

import html

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

from assistant.text import read_lines
from assistant.errors import AssistantError
from assistant.web.labels import edition_name, language_of, vendor_name
from assistant.web.service import Service

CONTEXT_LINES = 3
PAGE = """<!doctype html><html lang="{lang}"><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title><style>
body{{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:12px;}} h1{{font-size:1.05em}}
.meta{{color:#555;font-size:.9em}} ol{{font-family:ui-monospace,monospace;font-size:.88em;padding-left:4.5em}}
li{{white-space:pre-wrap;overflow-wrap:anywhere}} li.hit{{background:#fef3c7}} li.ctx{{color:#777}}
</style><h1>{title}</h1><p class="meta">{meta}</p><ol start="{first}">{lines}</ol></html>"""


def _spans(entry) -> list[tuple[int, int]]:
    return list(entry.source.spans) or [(entry.source.line_start, entry.source.line_end)]


def add_source_view(app: FastAPI, service: Service) -> None:
    def source(entry_id: str):
        entry = service.searcher.entry(entry_id)
        if entry is None:
            return JSONResponse({"error": "no entry with this id"}, status_code=404)
        corpus_files = service.searcher.index.manifest.get("corpus", {})
        if entry.source.path not in corpus_files:
            return JSONResponse({"error": "this entry's source file is not part of the build"}, status_code=404)
        try:
            lines = read_lines(service.settings.corpus_dir / entry.source.path)
        except AssistantError:
            return JSONResponse({"error": "the source file is not available on this server"}, status_code=404)
        spans = _spans(entry)
        first = max(1, min(s for s, _ in spans) - CONTEXT_LINES)
        last = min(len(lines), max(e for _, e in spans) + CONTEXT_LINES)
        hit = {n for start, end in spans for n in range(start, end + 1)}
        items = "".join(
            f'<li id="L{n}" class="{"hit" if n in hit else "ctx"}">{html.escape(lines[n - 1]) or " "}</li>'
            for n in range(first, last + 1)
        )
        lang = language_of(entry.question)
        ranges = ", ".join(f"{s}–{e}" for s, e in spans)
        meta = " · ".join(html.escape(p) for p in (
            vendor_name(entry.vendor_name, lang), edition_name(entry.edition, lang), entry.source.path,
            ("行 " if lang == "zh" else "lines ") + ranges))
        if entry.source.url:
            url = html.escape(entry.source.url)
            meta += f' · <a href="{url}" rel="noopener noreferrer">{url}</a>'
        return HTMLResponse(PAGE.format(lang=lang, title=html.escape(entry.question), meta=meta, first=first,
                                        lines=items))

    for prefix in ("", "/embed"):
        app.add_api_route(prefix + "/source/{entry_id}", source, methods=["GET"], include_in_schema=not prefix,
                          summary="The lines of the bundled corpus file an entry was read from")
