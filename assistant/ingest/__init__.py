"""Ingest: every document of the manifest → FAQ entries with provenance."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from assistant.editions import link_editions
from assistant.entry import FaqEntry, Source, stable_id
from assistant.errors import DocumentError
from assistant.ingest.manifest import Document, Manifest, load_manifest
from assistant.ingest.markdown import parse_markdown
from assistant.ingest.model import ParsedEntry
from assistant.ingest.pdf_align import Reference
from assistant.ingest.pdf_text import parse_pdf_text
from assistant.text import content_chars
from assistant.ingest.web_page import parse_web_page

Parser = Callable[[Document, list[Reference]], list[ParsedEntry]]

PARSERS: dict[str, Parser] = {
    "markdown": lambda doc, refs: parse_markdown(doc.path, doc.link_base),
    "pdf-text": lambda doc, refs: parse_pdf_text(doc.path, refs),
    "web-page": lambda doc, refs: parse_web_page(doc.path),
}
# Formats whose parser weighs other editions as evidence: parsed again once those exist.
USES_REFERENCES = {"pdf-text"}


def load_corpus_manifest(manifest_path: Path) -> Manifest:
    return load_manifest(manifest_path, tuple(PARSERS))


def ingest_corpus(manifest: Manifest) -> list[FaqEntry]:
    """All entries of all documents, or a CorpusError: never a partial corpus."""
    parsed = {doc.id: _parse(doc, []) for doc in manifest.documents}
    for doc in manifest.documents:
        if doc.format in USES_REFERENCES:
            references = [
                Reference(entry.question, entry.answer)
                for other in manifest.documents
                if other.vendor.slug == doc.vendor.slug and other.id != doc.id
                for entry in parsed[other.id]
            ]
            parsed[doc.id] = _parse(doc, references)
    entries: list[FaqEntry] = []
    for doc in manifest.documents:
        entries.extend(_to_entries(doc, parsed[doc.id]))
    link_editions(entries, manifest)
    return entries


def _parse(doc: Document, references: list[Reference]) -> list[ParsedEntry]:
    entries = PARSERS[doc.format](doc, references)
    if not entries:
        raise DocumentError(doc.path, f"no FAQ entries found by the '{doc.format}' parser")
    return entries


def _to_entries(doc: Document, parsed: list[ParsedEntry]) -> list[FaqEntry]:
    seen: dict[str, int] = {}
    entries = []
    for item in parsed:
        key = content_chars(item.question)
        seen[key] = seen.get(key, 0) + 1
        occurrence = "" if seen[key] == 1 else str(seen[key])
        entries.append(
            FaqEntry(
                id=f"{doc.id}:{stable_id(doc.id, key, occurrence)}",
                vendor=doc.vendor.slug,
                vendor_name=doc.vendor.name,
                product=doc.product,
                doc=doc.id,
                edition=doc.edition,
                updated=item.updated,
                section=item.section,
                question=item.question,
                answer=item.answer,
                source=Source(
                    path=doc.rel_path,
                    line_start=item.line_start,
                    line_end=item.line_end,
                    url=doc.source_url,
                    spans=item.spans if len(item.spans) > 1 else (),
                ),
                flags=item.flags if item.answer.strip() else (*item.flags, "answer_missing"),
                placement=item.placement,
            )
        )
    return entries
