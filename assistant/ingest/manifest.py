"""The corpus manifest: which documents exist, what they are, in which order."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import ManifestError

REQUIRED_DOCUMENT_KEYS = ("id", "path", "vendor", "product", "title", "edition", "format")


@dataclass(frozen=True)
class Vendor:
    slug: str
    name: str
    editions: tuple[str, ...]  # document ids, newest first


@dataclass(frozen=True)
class Document:
    id: str
    path: Path  # absolute
    rel_path: str  # as written in the manifest, relative to the corpus directory
    vendor: Vendor
    product: str
    title: str
    edition: str
    format: str
    source_url: str | None = None
    link_base: str | None = None
    dates: tuple[tuple[str, str], ...] = ()

    @property
    def edition_rank(self) -> int:
        """0 for the vendor's newest edition, 1 for the next, …"""
        return self.vendor.editions.index(self.id)


@dataclass(frozen=True)
class Manifest:
    path: Path
    vendors: dict[str, Vendor]
    documents: tuple[Document, ...]

    def document(self, doc_id: str) -> Document:
        for document in self.documents:
            if document.id == doc_id:
                return document
        valid = ", ".join(d.id for d in self.documents)
        raise ManifestError(f"unknown document '{doc_id}'; valid: {valid}")


def load_manifest(path: Path, known_formats: tuple[str, ...]) -> Manifest:
    if not path.is_file():
        raise ManifestError(f"{path}: corpus manifest not found")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: not a valid TOML manifest ({exc})") from exc

    vendors = _load_vendors(path, raw.get("vendors"))
    documents = tuple(
        _load_document(path, index, item, vendors, known_formats)
        for index, item in enumerate(raw.get("documents") or [])
    )
    if not documents:
        raise ManifestError(f"{path}: the manifest lists no [[documents]]")
    ids = [d.id for d in documents]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ManifestError(f"{path}: duplicate document ids: {', '.join(duplicates)}")
    for vendor in vendors.values():
        listed = {d.id for d in documents if d.vendor.slug == vendor.slug}
        if set(vendor.editions) != listed:
            raise ManifestError(
                f"{path}: vendors.{vendor.slug}.editions must order exactly its documents "
                f"({', '.join(sorted(listed))}), got {', '.join(vendor.editions) or 'nothing'}"
            )
    return Manifest(path=path, vendors=vendors, documents=documents)


def _load_vendors(path: Path, raw: object) -> dict[str, Vendor]:
    if not isinstance(raw, dict) or not raw:
        raise ManifestError(f"{path}: missing [vendors.<slug>] tables")
    vendors = {}
    for slug, table in raw.items():
        if not isinstance(table, dict) or "name" not in table:
            raise ManifestError(f"{path}: vendors.{slug} needs a name")
        vendors[slug] = Vendor(slug=slug, name=table["name"], editions=tuple(table.get("editions", ())))
    return vendors


def _load_document(
    path: Path, index: int, item: dict, vendors: dict[str, Vendor], known_formats: tuple[str, ...]
) -> Document:
    missing = [key for key in REQUIRED_DOCUMENT_KEYS if key not in item]
    label = item.get("id", f"documents[{index}]")
    if missing:
        raise ManifestError(f"{path}: document {label} lacks {', '.join(missing)}")
    if item["vendor"] not in vendors:
        raise ManifestError(
            f"{path}: document {label} names unknown vendor '{item['vendor']}'; "
            f"valid: {', '.join(vendors)}"
        )
    if item["format"] not in known_formats:
        raise ManifestError(
            f"{path}: document {label} has unknown format '{item['format']}'; "
            f"valid: {', '.join(known_formats)}"
        )
    file_path = (path.parent / item["path"]).resolve()
    if not file_path.is_file():
        raise ManifestError(f"{path}: document {label} names a missing file: {file_path}")
    return Document(
        id=item["id"],
        path=file_path,
        rel_path=item["path"],
        vendor=vendors[item["vendor"]],
        product=item["product"],
        title=item["title"],
        edition=item["edition"],
        format=item["format"],
        source_url=item.get("source_url"),
        link_base=item.get("link_base"),
        dates=tuple(sorted((item.get("dates") or {}).items())),
    )
