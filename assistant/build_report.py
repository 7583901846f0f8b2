"""What a build changed since the previous one: entries new, removed and changed, and new edition links.

`faq build` records the groups of this build in corpus/groups.json (so they are never renamed later)
and prints this report before publishing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from assistant.entry import FaqEntry

SHOWN = 8


@dataclass
class BuildReport:
    first_build: bool
    new: list[FaqEntry] = field(default_factory=list)
    removed: list[FaqEntry] = field(default_factory=list)
    changed: list[tuple[FaqEntry, FaqEntry]] = field(default_factory=list)  # (before, now)
    new_links: list[tuple[FaqEntry, FaqEntry]] = field(default_factory=list)

    @property
    def emptied(self) -> list[FaqEntry]:
        return [now for before, now in self.changed if before.answer.strip() and not now.answer.strip()]

    def lines(self) -> list[str]:
        if self.first_build:
            return ["no previous build to compare with"]
        out = [f"since the previous build: {len(self.new)} new, {len(self.removed)} removed, "
               f"{len(self.changed)} changed entries; {len(self.new_links)} new cross-edition links"]
        out += _listed("new", [f"{e.question} ({e.doc})" for e in self.new])
        out += _listed("removed", [f"{e.question} ({e.doc})" for e in self.removed])
        out += _listed("changed", [f"{now.question} ({now.doc}): {_what_changed(before, now)}"
                                   for before, now in self.changed])
        out += _listed("linked", [f"{a.question} ({a.doc}) = {b.question} ({b.doc})" for a, b in self.new_links])
        out += [f"  warning: the answer of “{e.question}” ({e.doc}) became empty" for e in self.emptied]
        return out


def _listed(title: str, items: list[str]) -> list[str]:
    shown = [f"  {title}: {item}" for item in items[:SHOWN]]
    if len(items) > SHOWN:
        shown.append(f"  … and {len(items) - SHOWN} more {title}")
    return shown


def _what_changed(before: FaqEntry, now: FaqEntry) -> str:
    parts = [name for name in ("question", "answer", "section", "updated") if getattr(before, name) != getattr(now, name)]
    if (before.source.line_start, before.source.line_end, before.source.spans) != (
        now.source.line_start, now.source.line_end, now.source.spans
    ):
        parts.append("source lines")
    if before.group != now.group:
        parts.append(f"group {before.group} → {now.group}")
    return ", ".join(parts) or "provenance"


def previous_entries(build: Path | None) -> list[FaqEntry] | None:
    """The entries of a published build, or None when there is none that can be read."""
    if build is None:
        return None
    try:
        with (build / "entries.jsonl").open(encoding="utf-8") as handle:
            return [FaqEntry.from_json(json.loads(line)) for line in handle if line.strip()]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def compare(before: list[FaqEntry] | None, now: list[FaqEntry]) -> BuildReport:
    if before is None:
        return BuildReport(first_build=True)
    old = {e.id: e for e in before}
    new = {e.id: e for e in now}
    report = BuildReport(first_build=False)
    report.new = [e for i, e in new.items() if i not in old]
    report.removed = [e for i, e in old.items() if i not in new]
    report.changed = [(old[i], e) for i, e in new.items() if i in old and _differs(old[i], e)]
    linked_before = _links(before)
    report.new_links = [(new[a], new[b]) for a, b in sorted(_links(now) - linked_before)]
    return report


def _differs(before: FaqEntry, now: FaqEntry) -> bool:
    return _what_changed(before, now) != "provenance" or before.source != now.source


def report_build(manifest, entries: list[FaqEntry], index_dir: Path, log) -> BuildReport:
    """Records the groups in groups.json and logs what changed since the published build."""
    from assistant.index import IndexStateError, current_build
    from assistant.linking import record_groups

    try:
        record_groups(manifest, entries)
    except OSError as exc:
        log(f"warning: cannot record edition groups in {manifest.corpus_dir} ({exc}): new groups are not pinned yet")
    try:
        build = current_build(index_dir)
    except IndexStateError:
        build = None
    report = compare(previous_entries(build), entries)
    for line in report.lines():
        log(line)
    return report


def _links(entries: list[FaqEntry]) -> set[tuple[str, str]]:
    """Pairs of entries of different editions in one group."""
    groups: dict[str, list[FaqEntry]] = {}
    for entry in entries:
        groups.setdefault(entry.group or entry.id, []).append(entry)
    return {
        (a.id, b.id) for members in groups.values() for a, b in combinations(members, 2) if a.doc != b.doc
    }
