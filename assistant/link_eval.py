"""Linking precision and recall against a hand-written table of same-question pairs (`faq links`).

Each row names a question of an added page and the group it must join: an existing group id,
`new:<label>` (a question only added pages ask: every row with the label must share one group of
their own), or `-` (asked nowhere else). `tolerate` lists near groups that are not wrong to join.

- recall: rows with a link whose entry ended where it must / rows with a link;
- a wrong merge: an entry whose group holds an entry the table does not allow beside it (a tolerated
  near group is allowed from either side of the pair);
- precision: linked entries without a wrong merge / linked entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from assistant.entry import FaqEntry
from assistant.errors import InputError


@dataclass
class GoldRow:
    file: str
    question: str
    link: str
    tolerate: frozenset[str]


@dataclass
class LinkReport:
    rows: int
    expected: int
    found: int
    linked: int
    wrong: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.found / self.expected if self.expected else 1.0

    @property
    def precision(self) -> float:
        return (self.linked - len(self.wrong)) / self.linked if self.linked else 1.0

    def lines(self, verbose: bool = False) -> list[str]:
        out = [
            f"{self.rows} questions of added pages; {self.expected} must link, {self.found} do: "
            f"recall {self.recall:.1%}",
            f"{self.linked} linked to another edition; {len(self.wrong)} wrong merges: precision {self.precision:.1%}",
        ]
        if verbose or self.wrong:
            out += [f"  wrong: {w}" for w in self.wrong]
        if verbose:
            out += [f"  missed: {m}" for m in self.missed]
        return out


def read_gold(path: Path) -> list[GoldRow]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the pairs table {path}: {exc}") from exc
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#") or line.startswith("file\t"):
            continue
        cells = line.split("\t")
        if len(cells) not in (3, 4):
            raise InputError(f"{path}:{number}: expected file, question, link[, tolerate] separated by tabs")
        tolerate = frozenset(t for t in (cells[3] if len(cells) == 4 else "").split("|") if t)
        rows.append(GoldRow(cells[0], cells[1], cells[2], tolerate))
    return rows


def evaluate_links(entries: list[FaqEntry], pairs: Path) -> LinkReport:
    gold = read_gold(pairs)
    by_key = {(Path(e.source.path).name, e.question): e for e in entries}
    missing = [f"{r.file}: {r.question}" for r in gold if (r.file, r.question) not in by_key]
    if missing:
        raise InputError(f"{len(missing)} questions of {pairs} are not in the corpus, e.g. {missing[0]}")
    added = {by_key[(r.file, r.question)].id: r for r in gold}
    members: dict[str, list[FaqEntry]] = {}
    for entry in entries:
        members.setdefault(entry.group, []).append(entry)
    label = {entry_id: row.link for entry_id, row in added.items()}
    report = LinkReport(rows=len(gold), expected=0, found=0, linked=0)
    for entry_id, row in added.items():
        entry = next(e for e in entries if e.id == entry_id)
        group = members[entry.group]
        others = [m for m in group if m.id != entry_id]
        allowed = {row.link, *row.tolerate}
        wrong = [
            m for m in others
            if (m.id in label and label[m.id] != row.link and (label[m.id] == "-" or label[m.id] not in allowed)
                and entry.group not in added[m.id].tolerate)  # a near question, tolerated from its side
            or (m.id not in label and entry.group not in allowed)
        ]
        if row.link != "-":
            partners = [i for i, link in label.items() if link == row.link and i != entry_id]
            if row.link.startswith("new:"):
                ok = bool(partners) and all(next(e for e in entries if e.id == i).group == entry.group for i in partners)
                report.expected += bool(partners)
            else:
                ok = entry.group == row.link
                report.expected += 1
            report.found += ok
            if not ok and (partners or not row.link.startswith("new:")):
                report.missed.append(f"{row.file}: {row.question} → {row.link} (in {entry.group})")
        if others:
            report.linked += 1
        if wrong:
            report.wrong.append(f"{row.file}: {row.question} ↔ {wrong[0].question} ({wrong[0].doc}, {entry.group})")
    return report
