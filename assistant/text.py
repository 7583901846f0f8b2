"""Text helpers shared by the parsers: reading files, joining cut lines, comparing text."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from assistant.errors import DocumentError

# A line ending in one of these ends a sentence (or introduces a list).
TERMINAL_PUNCT = "。！？；：!?;:"
QUESTION_MARKS = "？?"
# Punctuation that never starts a fresh line of prose: a line starting with it continues.
CONTINUING_PUNCT = "，。；：！？、）)”》】%"
CJK_PUNCT = "，。；：！？、（）“”《》【】"
# An API error name (FailedOperation.SignatureIncorrectOrUnapproved) or a numeric error code.
API_NAME_RE = re.compile(r"\b[A-Z][A-Za-z]+(?:\.[A-Z][A-Za-z0-9]+)+\b")
ERROR_CODE_RE = re.compile(r"(?<![\d.])\d{4,5}(?![\d.])")
URL_RE = re.compile(r"https?://[^\s)）]+")


def read_lines(path: Path) -> list[str]:
    """The document's lines, 1-based by index + 1. Refuses empty, binary and non-UTF-8 files."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(path, f"cannot be read ({exc.strerror})") from exc
    if b"\x00" in data:
        raise DocumentError(path, "is a binary file (it holds NUL bytes), not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            path, f"is not UTF-8 text (invalid byte at offset {exc.start}); convert it to UTF-8"
        ) from exc
    if not text.strip():
        raise DocumentError(path, "is empty")
    return [line.rstrip("\r") for line in text.split("\n")]


def is_cjk(char: str) -> bool:
    return unicodedata.east_asian_width(char) in "WF"


def display_width(text: str) -> int:
    return sum(2 if is_cjk(char) else 1 for char in text)


def is_ascii_word_char(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char in "_")


def join_pieces(left: str, right: str) -> str:
    """Join two pieces of one sentence that an export cut apart."""
    if not left:
        return right.strip()
    if left[-1].isspace():
        return left.rstrip() + " " + right.lstrip()
    right = right.lstrip()
    if right and is_ascii_word_char(left[-1]) and is_ascii_word_char(right[0]):
        return left + " " + right
    return left + right


def ends_sentence(line: str) -> bool:
    stripped = line.rstrip().rstrip("”’\"")
    return bool(stripped) and stripped[-1] in TERMINAL_PUNCT


def tidy_spaces(text: str) -> str:
    """Collapse the spaces a PDF export leaves around link texts, without gluing English words."""
    text = re.sub(r"[ \t\u3000]+", " ", text).strip()
    punct = re.escape(CJK_PUNCT)
    text = re.sub(rf" ?([{punct}]) ?", r"\1", text)
    return re.sub(r"(?<=[\u4e00-\u9fff]) (?=[\u4e00-\u9fff])", "", text)


def fold(text: str) -> str:
    """Full-width to half-width, case-folded: for comparing, never for display."""
    return unicodedata.normalize("NFKC", text).casefold()


@lru_cache(maxsize=65536)
def content_chars(text: str) -> str:
    """Letters, digits and CJK characters only, folded."""
    return "".join(char for char in fold(text) if char.isalnum())


@lru_cache(maxsize=65536)
def bigrams(text: str) -> frozenset[str]:
    chars = content_chars(text)
    return frozenset(chars[i : i + 2] for i in range(len(chars) - 1))


def identifiers(text: str) -> set[str]:
    """Error codes and API error names mentioned in the text."""
    folded = unicodedata.normalize("NFKC", text)
    return set(API_NAME_RE.findall(folded)) | set(ERROR_CODE_RE.findall(folded))


def dice(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return 2 * len(a & b) / (len(a) + len(b))


def containment(part: set[str], whole: set[str]) -> float:
    """Share of `part` found in `whole`."""
    return len(part & whole) / len(part) if part else 0.0
