"""Vendor API error codes and what the vendors' error-code references say they mean (corpus/error_codes.tsv).

A customer pastes the code their API call returned; the FAQ prints few of them. A code it does not print is
searched by its meaning ("LimitExceeded.PhoneNumberDailyLimit" → 单个手机号日下发短信条数超过设定的上限).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assistant.phrases import PhraseMatcher
from assistant.tokenize import normalize
from assistant.tsv import read_rows


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
        return cls([ErrorCode(*columns) for columns in read_rows(path, (3,), "vendor, code and meaning")])

    def meanings(self, text: str) -> list[str]:
        """The meanings of the codes `text` names, each once, in the table's order."""
        found = self._matcher.matching(normalize(text))
        return list(dict.fromkeys(code.meaning for code in found))

    def vendors(self, text: str) -> set[str]:
        """The vendors whose codes `text` names."""
        return {code.vendor for code in self._matcher.matching(normalize(text))}
