"""The `faq` command line: thin wrappers over the library; errors become messages here."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from assistant.config import Settings
from assistant.editions import answer_changed
from assistant.entry import FaqEntry
from assistant.errors import AssistantError
from assistant.ingest import ingest_corpus, load_corpus_manifest


def _load_entries(settings: Settings) -> tuple[list[FaqEntry], object]:
    manifest = load_corpus_manifest(settings.manifest_path)
    return ingest_corpus(manifest), manifest


def cmd_entries(args: argparse.Namespace, settings: Settings) -> int:
    entries, manifest = _load_entries(settings)
    if args.vendor and args.vendor not in manifest.vendors:
        raise AssistantError(f"unknown vendor '{args.vendor}'; valid: {', '.join(manifest.vendors)}")
    if args.doc:
        manifest.document(args.doc)  # raises with the valid ids
    selected = [
        e for e in entries if (not args.doc or e.doc == args.doc) and (not args.vendor or e.vendor == args.vendor)
    ]
    by_id = {entry.id: entry for entry in entries}
    out = sys.stdout
    for entry in selected:
        if args.json:
            out.write(json.dumps(entry.to_json(), ensure_ascii=False) + "\n")
        else:
            out.write(_format_entry(entry, by_id) + "\n\n")
    return 0


def _format_entry(entry: FaqEntry, by_id: dict[str, FaqEntry]) -> str:
    src = entry.source
    where = f"{src.path}:{src.line_start}-{src.line_end}"
    updated = entry.updated or "undated"
    section = f" · {entry.section}" if entry.section else ""
    flags = f"  [{', '.join(entry.flags)}]" if entry.flags else ""
    others = [by_id[e["id"]] for e in entry.editions if e["id"] != entry.id]
    editions = ""
    if others:
        editions = "\n  also in: " + " · ".join(
            f"{other.edition} ({'answer differs' if answer_changed(entry, other) else 'same'})"
            for other in others
        )
    answer = "\n".join("    " + line for line in (entry.answer or "(no answer found in the document)").splitlines())
    return (
        f"Q: {entry.question}{flags}\n"
        f"  {entry.vendor_name} · {entry.product} · {entry.edition}{section} · {updated} · {where}"
        f"{editions}\n{answer}"
    )


def cmd_corpus(args: argparse.Namespace, settings: Settings) -> int:
    entries, manifest = _load_entries(settings)
    per_doc = Counter(e.doc for e in entries)
    groups: dict[str, list[FaqEntry]] = {}
    for entry in entries:
        groups.setdefault(entry.group, []).append(entry)
    shared = [g for g in groups.values() if len(g) > 1]
    print(f"Corpus: {settings.corpus_dir}")
    for doc in manifest.documents:
        missing = sum(1 for e in entries if e.doc == doc.id and "answer_missing" in e.flags)
        note = f", {missing} without an answer in the text" if missing else ""
        print(f"  {doc.id:28} {per_doc[doc.id]:4} entries  {doc.vendor.name} · {doc.edition}{note}")
    changed = sum(1 for g in shared if any(m["answer_changed"] for m in g[0].editions))
    print(f"{len(entries)} entries in {len(groups)} edition groups; "
          f"{len(shared)} questions appear in several editions, {changed} with a changed answer.")
    print("\nTry:\n  faq entries --vendor aliyun\n  faq entries --json --doc tencent-sms-faq-2025-pdf")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faq", description="Vendor SMS FAQ assistant.")
    commands = parser.add_subparsers(dest="command", required=True)

    entries = commands.add_parser("entries", help="list the FAQ entries of the corpus")
    entries.add_argument("--json", action="store_true", help="one JSON object per line")
    entries.add_argument("--doc", help="only this document id")
    entries.add_argument("--vendor", help="only this vendor (tencent, aliyun)")
    entries.set_defaults(handler=cmd_entries)

    corpus = commands.add_parser("corpus", help="summarise the corpus: documents, entries, editions")
    corpus.set_defaults(handler=cmd_corpus)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    try:
        return args.handler(args, settings)
    except AssistantError as exc:
        print(f"faq: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
