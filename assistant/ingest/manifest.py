"""The corpus manifest (schema 2): vendors, their editions newest first, and the files of each edition.

Every key is checked: an unknown or misspelled key is an error that names it and the closest valid key.
README.md ("Corpus manifest") documents every key.
"""

from __future__ import annotations

import datetime as dt
import difflib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import ManifestError

SCHEMA = 2
LANGUAGES = ("zh", "en")
TOP_KEYS = {"schema": False, "vendors": True, "editions": True, "linking": False}
VENDOR_KEYS = {"name": True, "aliases": False, "editions": True}
EDITION_KEYS = {
    "id": True, "vendor": True, "label": True, "language": True, "product": True, "title": True,
    "format": True, "files": True, "dates": False, "source_url": False, "link_base": False,
    "pairing_evidence": False,
}
FILE_KEYS = {"path": True, "format": False, "url": False, "link_base": False}
LINKING_KEYS = {"contrasts": False}
# Printed dates (all optional): ISO dates, except the copyright line, kept as printed.
DATE_KEYS = {"published": False, "section_updated_first": False, "section_updated_last": False, "copyright": False}
ISO_DATE_KEYS = ("published", "section_updated_first", "section_updated_last")


@dataclass(frozen=True)
class Vendor:
    slug: str
    name: str
    aliases: tuple[str, ...]
    editions: tuple[str, ...]  # edition ids, newest first


@dataclass(frozen=True)
class EditionFile:
    path: Path  # absolute
    rel_path: str  # as written in the manifest, relative to the corpus directory
    format: str
    url: str | None = None
    link_base: str | None = None


@dataclass(frozen=True)
class Document:
    """One edition of a vendor's FAQ: one or more files, one language. (`edition` is its label.)"""

    id: str
    vendor: Vendor
    product: str
    title: str
    edition: str
    language: str
    files: tuple[EditionFile, ...]
    dates: tuple[tuple[str, str], ...] = ()
    # Editions whose entries a pdf-text parser weighs as pairing evidence; None: every other edition of the vendor.
    pairing_evidence: tuple[str, ...] | None = None

    @property
    def label(self) -> str:
        return self.edition

    @property
    def edition_rank(self) -> int:
        """0 for the vendor's newest edition, 1 for the next, …"""
        return self.vendor.editions.index(self.id)

    @property
    def path(self) -> Path:
        """The first file (the only one for most editions)."""
        return self.files[0].path

    @property
    def rel_path(self) -> str:
        return self.files[0].rel_path

    @property
    def format(self) -> str:
        return self.files[0].format


@dataclass(frozen=True)
class Manifest:
    path: Path
    vendors: dict[str, Vendor]
    documents: tuple[Document, ...]
    contrasts: tuple[tuple[str, ...], ...] = ()

    @property
    def corpus_dir(self) -> Path:
        return self.path.parent

    def document(self, doc_id: str) -> Document:
        for document in self.documents:
            if document.id == doc_id:
                return document
        valid = ", ".join(d.id for d in self.documents)
        raise ManifestError(f"unknown document '{doc_id}'; valid: {valid}")

    def vendor_for(self, name: str) -> Vendor:
        """A vendor by slug, display name or alias (case-insensitive)."""
        folded = name.strip().casefold()
        for vendor in self.vendors.values():
            names = {vendor.slug, vendor.name, *vendor.name.split(), *vendor.aliases}
            if folded in {n.casefold() for n in names}:
                return vendor
        raise ManifestError(f"unknown vendor '{name}'; valid: {', '.join(self.vendors)}")


def check_keys(where: str, table: object, allowed: dict[str, bool]) -> dict:
    """The table, once every key is known and every required key present."""
    if not isinstance(table, dict):
        raise ManifestError(f"{where}: expected a table, got {type(table).__name__}")
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.5)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ManifestError(f"{where}: unknown key '{key}'{hint}; valid keys: {', '.join(allowed)}")
    missing = [key for key, required in allowed.items() if required and key not in table]
    if missing:
        raise ManifestError(f"{where}: missing required key(s) {', '.join(missing)}")
    return table


def check_date(where: str, value: object) -> str:
    text = str(value)
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    raise ManifestError(f"{where}: '{value}' is not a date (YYYY-MM-DD)")


def load_manifest(path: Path, known_formats: tuple[str, ...]) -> Manifest:
    if not path.is_file():
        raise ManifestError(f"{path}: corpus manifest not found")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: not a valid TOML manifest ({exc})") from exc
    check_keys(str(path), raw, TOP_KEYS)
    if raw.get("schema", SCHEMA) != SCHEMA:
        raise ManifestError(f"{path}: schema {raw.get('schema')} is not supported; this version reads schema {SCHEMA}")
    vendors = _load_vendors(path, raw["vendors"])
    if not isinstance(raw["editions"], list) or not raw["editions"]:
        raise ManifestError(f"{path}: the manifest lists no [[editions]]")
    documents = tuple(
        _load_edition(path, index, item, vendors, known_formats) for index, item in enumerate(raw["editions"])
    )
    ids = [d.id for d in documents]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ManifestError(f"{path}: duplicate edition ids: {', '.join(duplicates)}")
    labels = [(d.vendor.slug, d.edition) for d in documents]
    if repeated := sorted({label for vendor, label in labels if labels.count((vendor, label)) > 1}):
        raise ManifestError(f"{path}: duplicate edition labels: {', '.join(repeated)}")
    files = [f.rel_path for d in documents for f in d.files]
    if repeated := sorted({f for f in files if files.count(f) > 1}):
        raise ManifestError(f"{path}: a file belongs to several editions: {', '.join(repeated)}")
    for document in documents:
        unknown = [i for i in document.pairing_evidence or () if i not in ids or i == document.id]
        if unknown:
            raise ManifestError(f"{path}: edition {document.id}: pairing_evidence names {', '.join(unknown)}, "
                                f"not another edition of the manifest")
    for vendor in vendors.values():
        listed = {d.id for d in documents if d.vendor.slug == vendor.slug}
        if set(vendor.editions) != listed or len(vendor.editions) != len(listed):
            raise ManifestError(
                f"{path}: vendors.{vendor.slug}.editions must order exactly its editions "
                f"({', '.join(sorted(listed))}), got {', '.join(vendor.editions) or 'nothing'}"
            )
    return Manifest(path=path, vendors=vendors, documents=documents, contrasts=_load_linking(path, raw))


def _load_vendors(path: Path, raw: object) -> dict[str, Vendor]:
    if not isinstance(raw, dict) or not raw:
        raise ManifestError(f"{path}: missing [vendors.<slug>] tables")
    vendors = {}
    for slug, table in raw.items():
        table = check_keys(f"{path}: vendors.{slug}", table, VENDOR_KEYS)
        aliases = table.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
            raise ManifestError(f"{path}: vendors.{slug}.aliases must be a list of names")
        vendors[slug] = Vendor(slug, table["name"], tuple(aliases), tuple(table["editions"]))
    return vendors


def _load_edition(
    path: Path, index: int, item: object, vendors: dict[str, Vendor], known_formats: tuple[str, ...]
) -> Document:
    label = item.get("id", f"editions[{index}]") if isinstance(item, dict) else f"editions[{index}]"
    where = f"{path}: edition {label}"
    item = check_keys(where, item, EDITION_KEYS)
    if item["vendor"] not in vendors:
        raise ManifestError(f"{where} names unknown vendor '{item['vendor']}'; valid: {', '.join(vendors)}")
    if item["language"] not in LANGUAGES:
        raise ManifestError(f"{where}: language must be one of {', '.join(LANGUAGES)}, got '{item['language']}'")
    _check_format(where, item["format"], known_formats)
    if not isinstance(item["files"], list) or not item["files"]:
        raise ManifestError(f"{where}: files must list at least one {{ path = … }}")
    files = tuple(_load_file(path, where, n, raw, item, known_formats) for n, raw in enumerate(item["files"]))
    dates = check_keys(f"{where} dates", item.get("dates", {}), DATE_KEYS)
    checked = {k: check_date(f"{where} dates.{k}", v) if k in ISO_DATE_KEYS else str(v) for k, v in dates.items()}
    return Document(
        id=item["id"],
        vendor=vendors[item["vendor"]],
        product=item["product"],
        title=item["title"],
        edition=item["label"],
        language=item["language"],
        files=files,
        dates=tuple(sorted(checked.items())),
        pairing_evidence=tuple(item["pairing_evidence"]) if "pairing_evidence" in item else None,
    )


def _load_file(
    path: Path, where: str, n: int, raw: object, edition: dict, known_formats: tuple[str, ...]
) -> EditionFile:
    raw = check_keys(f"{where} files[{n}]", raw, FILE_KEYS)
    file_format = raw.get("format", edition["format"])
    _check_format(f"{where} file {raw['path']}", file_format, known_formats)
    file_path = (path.parent / raw["path"]).resolve()
    if not file_path.is_file():
        raise ManifestError(f"{where} names a missing file: {file_path}")
    single = len(edition["files"]) == 1
    return EditionFile(
        path=file_path,
        rel_path=raw["path"],
        format=file_format,
        url=raw.get("url", edition.get("source_url") if single else None),
        link_base=raw.get("link_base", edition.get("link_base")),
    )


def _check_format(where: str, value: str, known_formats: tuple[str, ...]) -> None:
    if value not in known_formats:
        raise ManifestError(f"{where} has unknown format '{value}'; valid: {', '.join(known_formats)}")


def _load_linking(path: Path, raw: dict) -> tuple[tuple[str, ...], ...]:
    linking = check_keys(f"{path}: linking", raw.get("linking", {}), LINKING_KEYS)
    contrasts = linking.get("contrasts", [])
    if not all(isinstance(axis, list) and len(axis) >= 2 and all(isinstance(t, str) for t in axis) for axis in contrasts):
        raise ManifestError(f"{path}: linking.contrasts must be a list of lists of two or more terms")
    return tuple(tuple(axis) for axis in contrasts)
