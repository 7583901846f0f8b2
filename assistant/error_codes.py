"""Vendor API error codes and what the vendors' error-code references say they mean (corpus/error_codes.tsv).

A customer pastes the code their API call returned; the FAQ prints few of them. A code it does not print is
searched by its meaning ("LimitExceeded.PhoneNumberDailyLimit" → 单个手机号日下发短信条数超过设定的上限).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assistant.errors import CorpusError
from assistant.phrases import PhraseMatcher
from assistant.tokenize import normalize


@dataclass(frozen=True)
class ErrorCode:
    vendor: str
    code: str
    meaning: str


class ErrorCodes:
    def __init__(self, codes: list[ErrorCode]) -> None:
        self.codes = codes
        self._matcher = PhraseMatcher([(code, (code.code,)) for code in codes])

    @classmethod
    def load(cls, path: Path) -> "ErrorCodes":
        if not path.exists():
            return cls([])
        codes = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#") or line.startswith("vendor\t"):
                continue
            columns = [c.strip() for c in line.split("\t")]
            if len(columns) != 3 or not all(columns):
                raise CorpusError(f"{path}:{number}: expected vendor, code and meaning separated by tabs")
            codes.append(ErrorCode(*columns))
        return cls(codes)

    def meanings(self, text: str) -> list[str]:
        """The meanings of the codes `text` names, each once, in the table's order."""
        found = self._matcher.matching(normalize(text))
        return list(dict.fromkeys(code.meaning for code in found))
