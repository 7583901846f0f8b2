"""Ingest: every document of the manifest → FAQ entries with provenance."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from assistant.linking import link_editions
from assistant.entry import FaqEntry, Source, stable_id
from assistant.errors import DocumentError
from assistant.ingest.manifest import Document, EditionFile, Manifest, load_manifest
from assistant.ingest.markdown import parse_markdown
from assistant.ingest.model import ParsedEntry
from assistant.ingest.pdf_align import Reference
from assistant.ingest.pdf_text import parse_pdf_text
from assistant.text import content_chars
from assistant.ingest.web_page import parse_web_page

Parser = Callable[[EditionFile, list[Reference]], list[ParsedEntry]]

PARSERS: dict[str, Parser] = {
    "markdown": lambda file, refs: parse_markdown(file.path, file.link_base, file.url),
    "pdf-text": lambda file, refs: parse_pdf_text(file.path, refs),
    "web-page": lambda file, refs: parse_web_page(file.path),
}
# Formats whose parser weighs other editions as evidence: parsed again once those exist.
USES_REFERENCES = {"pdf-text"}


def load_corpus_manifest(manifest_path: Path) -> Manifest:
    return load_manifest(manifest_path, tuple(PARSERS))


def ingest_corpus(manifest: Manifest, cache_dir: Path | None = None) -> list[FaqEntry]:
    """All entries of all editions, or a CorpusError: never a partial corpus.

    Group assignments recorded in groups.json beside the manifest are kept; other entries are linked
    (see assistant.linking), with question vectors cached under `cache_dir`.
    """
    parsed = {doc.id: [_parse(file, []) for file in doc.files] for doc in manifest.documents}
    for doc in manifest.documents:
        for position, file in enumerate(doc.files):
            if file.format in USES_REFERENCES:
                references = [
                    Reference(entry.question, entry.answer)
                    for other in manifest.documents
                    if _is_evidence(doc, other)
                    for items in parsed[other.id]
                    for entry in items
                ]
                parsed[doc.id][position] = _parse(file, references)
    entries: list[FaqEntry] = []
    for doc in manifest.documents:
        entries.extend(edition_entries(doc, parsed[doc.id]))
    link_editions(entries, manifest, cache_dir)
    return entries


def _is_evidence(doc: Document, other: Document) -> bool:
    """Whether `other` is pairing evidence for `doc`: named in the manifest, so adding an edition never re-pairs."""
    if doc.pairing_evidence is not None:
        return other.id in doc.pairing_evidence
    return other.vendor.slug == doc.vendor.slug and other.id != doc.id


def parse_file(file: EditionFile) -> list[ParsedEntry]:
    """One file on its own (no other edition as evidence): what `faq add` checks before adding."""
    return _parse(file, [])


def _parse(file: EditionFile, references: list[Reference]) -> list[ParsedEntry]:
    entries = PARSERS[file.format](file, references)
    if not entries:
        raise DocumentError(file.path, f"no FAQ entries found by the '{file.format}' parser")
    return entries


def edition_entries(doc: Document, parsed_files: list[list[ParsedEntry]]) -> list[FaqEntry]:
    """Entries with ids and provenance; an id hashes the edition, the question and its occurrence."""
    seen: dict[str, int] = {}
    entries = []
    for file, parsed in zip(doc.files, parsed_files):
        entries.extend(_file_entries(doc, file, parsed, seen))
    return entries


def _file_entries(doc: Document, file: EditionFile, parsed: list[ParsedEntry], seen: dict[str, int]) -> list[FaqEntry]:
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
                language=doc.language,
                updated=item.updated,
                section=item.section,
                question=item.question,
                answer=item.answer,
                source=Source(
                    path=file.rel_path,
                    line_start=item.line_start,
                    line_end=item.line_end,
                    url=_entry_url(file.url, item.anchor),
                    spans=item.spans if len(item.spans) > 1 else (),
                ),
                flags=item.flags if item.answer.strip() else (*item.flags, "answer_missing"),
                placement=item.placement,
            )
        )
    return entries


def _entry_url(page_url: str | None, anchor: str | None) -> str | None:
    if page_url and anchor and "#" not in page_url:
        return f"{page_url}#{anchor}"
    return page_url
