"""`faq add`: a new edition (one or more files) into the corpus, checked first, all or nothing.

Every file is read and parsed before anything is written; then the files are copied byte for byte,
the edition is recorded in the manifest (tomlkit keeps its comments), the whole corpus is ingested
again, and the new entries' groups are recorded in groups.json. Any failure restores what was there.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import tomlkit

from assistant.entry import FaqEntry, stable_id
from assistant.errors import AssistantError, CorpusError, InputError
from assistant.ingest import PARSERS, ingest_corpus, load_corpus_manifest, parse_file
from assistant.ingest.manifest import LANGUAGES, EditionFile, Manifest
from assistant.ingest.model import ParsedEntry
from assistant.linking import groups_path, load_recorded, record_groups
from assistant.text import read_lines

FORMATS = ("auto", *PARSERS)
MARKDOWN_HEADING_RE = re.compile(r"^#{1,6}\s+\S", re.M)
PDF_SECTION_RE = re.compile(r"^最近更新时间[:：]", re.M)
WEB_HEADER_RE = re.compile(r"\AURL:\s*\S+\n")


@dataclass
class AddRequest:
    files: list[Path]
    vendor: str
    label: str
    language: str = "zh"
    format: str = "auto"
    date: str | None = None
    link_base: str | None = None


@dataclass
class FileSummary:
    source: Path
    rel_path: str
    format: str
    questions: list[str]
    warnings: list[str] = field(default_factory=list)


@dataclass
class AddReport:
    edition_id: str
    label: str
    vendor: str
    files: list[FileSummary]
    linked: list[tuple[FaqEntry, list[FaqEntry]]]  # new entry → the existing entries of its group

    @property
    def questions(self) -> int:
        return sum(len(f.questions) for f in self.files)


def detect_format(path: Path, text: str) -> str:
    if path.suffix.lower() in (".md", ".markdown") or MARKDOWN_HEADING_RE.search(text):
        return "markdown"
    if WEB_HEADER_RE.match(text):
        return "web-page"
    if PDF_SECTION_RE.search(text):
        return "pdf-text"
    raise InputError(f"{path}: cannot tell the format (no Markdown headings, no web-page header, "
                     f"no '最近更新时间' sections): give --format {'|'.join(PARSERS)}")


def edition_id(vendor: str, label: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    return f"{vendor}-{slug}" if slug else f"{vendor}-{stable_id(label, length=8)}"


def add_edition(corpus_dir: Path, request: AddRequest, cache_dir: Path | None = None) -> AddReport:
    manifest = load_corpus_manifest(corpus_dir / "manifest.toml")
    vendor, new_id, summaries = _check(manifest, request)
    manifest_path = manifest.path
    saved_manifest = manifest_path.read_text(encoding="utf-8")
    groups_file = groups_path(manifest)
    saved_groups = groups_file.read_bytes() if groups_file.exists() else None
    copied: list[Path] = []
    try:
        for summary in summaries:
            target = corpus_dir / summary.rel_path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(summary.source, target)
            copied.append(target)
        manifest_path.write_text(_with_edition(saved_manifest, manifest, vendor, new_id, request, summaries), encoding="utf-8")
        updated = load_corpus_manifest(manifest_path)
        recorded = load_recorded(updated)
        entries = ingest_corpus(updated, cache_dir)
        record_groups(updated, entries)
    except BaseException as exc:
        manifest_path.write_text(saved_manifest, encoding="utf-8")
        if saved_groups is None:
            groups_file.unlink(missing_ok=True)
        else:
            groups_file.write_bytes(saved_groups)
        for path in copied:
            path.unlink(missing_ok=True)
            _remove_if_empty(path.parent)
        if isinstance(exc, OSError):
            raise CorpusError(f"cannot write to the corpus in {corpus_dir} ({exc}); nothing was changed") from exc
        raise
    by_group: dict[str, list[FaqEntry]] = {}
    for entry in entries:
        by_group.setdefault(entry.group, []).append(entry)
    linked = [
        (entry, others)
        for entry in entries
        if entry.doc == new_id
        and (others := [m for m in by_group[entry.group] if m.doc != new_id and m.id in recorded])
    ]
    return AddReport(new_id, request.label, vendor, summaries, linked)


def _remove_if_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        pass  # not empty, or already gone


def _check(manifest: Manifest, request: AddRequest) -> tuple[str, str, list[FileSummary]]:
    """Everything that can be refused, refused before anything is written."""
    if not request.files:
        raise InputError("give at least one file to add")
    if request.language not in LANGUAGES:
        raise InputError(f"--language must be one of {', '.join(LANGUAGES)}, got '{request.language}'")
    if request.format not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, got '{request.format}'")
    if request.date is not None:
        try:
            if len(request.date) != 10:
                raise ValueError
            dt.date.fromisoformat(request.date)
        except ValueError:
            raise InputError(f"--date '{request.date}' is not a date (YYYY-MM-DD)") from None
    if request.link_base is not None and not re.match(r"^https?://[^/\s]+", request.link_base):
        raise InputError(f"--link-base '{request.link_base}' is not an http(s) URL")
    label = request.label.strip()
    if not label:
        raise InputError("--edition needs a label, e.g. --edition 'FAQ pages (en, international site)'")
    try:
        vendor = manifest.vendor_for(request.vendor).slug
    except AssistantError as exc:
        raise InputError(str(exc)) from None
    if any(d.edition.casefold() == label.casefold() for d in manifest.documents):
        raise InputError(f"--edition '{label}': an edition with this label already exists; choose another label")
    new_id = edition_id(vendor, label)
    if any(d.id == new_id for d in manifest.documents):
        raise InputError(f"--edition '{label}': its id '{new_id}' is taken by another edition; choose another label")
    existing = {f.path.read_bytes(): f.rel_path for d in manifest.documents for f in d.files}
    names = [p.name for p in request.files]
    if len(set(names)) != len(names):
        raise InputError("two files share one name; rename one of them")
    summaries = []
    for path in request.files:
        summaries.append(_check_file(manifest, path, vendor, new_id, request, existing))
    return vendor, new_id, summaries


def _check_file(manifest: Manifest, path: Path, vendor: str, new_id: str, request: AddRequest,
                existing: dict[bytes, str]) -> FileSummary:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    data = path.read_bytes()
    try:
        text = "\n".join(read_lines(path))
    except AssistantError as exc:
        raise InputError(str(exc)) from None
    if data in existing:
        raise InputError(f"{path}: already in the corpus as {existing[data]}")
    file_format = detect_format(path, text) if request.format == "auto" else request.format
    rel_path = f"{vendor}/{new_id}/{path.name}"
    if (manifest.corpus_dir / rel_path).exists():
        raise InputError(f"{path}: {rel_path} already exists in the corpus")
    probe = EditionFile(path=path.resolve(), rel_path=rel_path, format=file_format, link_base=request.link_base)
    try:
        parsed = parse_file(probe)
    except AssistantError as exc:
        raise InputError(f"{path}: the {file_format} parser cannot read it: {getattr(exc, 'reason', exc)}") from None
    questions = [p.question for p in parsed if p.question.strip()]
    if not questions:
        raise InputError(f"{path}: no questions found by the {file_format} parser")
    if not any(p.answer.strip() for p in parsed):
        raise InputError(f"{path}: no questions with an answer: {len(questions)} headings, none with text under it")
    return FileSummary(path, rel_path, file_format, questions, _warnings(parsed))


def _warnings(parsed: list[ParsedEntry]) -> list[str]:
    warnings = [f"heading without an answer (line {p.line_start}): {p.question}" for p in parsed if not p.answer.strip()]
    seen: set[str] = set()
    for p in parsed:
        if p.question in seen:
            warnings.append(f"question asked twice (line {p.line_start}): {p.question}")
        seen.add(p.question)
    return warnings


def _with_edition(text: str, manifest: Manifest, vendor: str, new_id: str, request: AddRequest,
                  summaries: list[FileSummary]) -> str:
    document = tomlkit.parse(text)
    formats = {s.format for s in summaries}
    table = tomlkit.table()
    table.add("id", new_id)
    table.add("vendor", vendor)
    table.add("label", request.label.strip())
    table.add("language", request.language)
    first = next(d for d in manifest.documents if d.vendor.slug == vendor)
    table.add("product", first.product)
    table.add("title", request.label.strip())
    table.add("format", summaries[0].format if len(formats) == 1 else "markdown")
    if request.date:
        dates = tomlkit.inline_table()
        dates["published"] = request.date
        table.add("dates", dates)
    if request.link_base:
        table.add("link_base", request.link_base)
    if "pdf-text" in formats:  # pinned, so that editions added later never re-pair this one
        table.add("pairing_evidence", list(manifest.vendors[vendor].editions))
    files = tomlkit.array()
    files.multiline(len(summaries) > 1)
    for summary in summaries:
        item = tomlkit.inline_table()
        item["path"] = summary.rel_path
        if len(formats) > 1:
            item["format"] = summary.format
        files.append(item)
    table.add("files", files)
    document["editions"].append(table)
    order = document["vendors"][vendor]["editions"]
    order.insert(_position(manifest, vendor, request.date), new_id)
    return re.sub(r"(?<=[^\n])\n\[\[editions\]\]", "\n\n[[editions]]", tomlkit.dumps(document))


def _position(manifest: Manifest, vendor: str, date: str | None) -> int:
    """Where the edition goes in the vendor's newest-first order: by its date, else last (undated)."""
    order = list(manifest.vendors[vendor].editions)
    if date is None:
        return len(order)
    for position, doc_id in enumerate(order):
        dates = [v for k, v in manifest.document(doc_id).dates if k != "copyright"]
        if dates and max(dates) < date:
            return position
    return len(order)
