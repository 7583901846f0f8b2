"""Tokens for BM25: jieba for Chinese, whole identifiers, folded width and case.

The domain dictionary (terms jieba must keep whole) is collected from the corpus at
build time and stored with the index, so a search tokenizes exactly as its build did.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import jieba

from assistant.text import API_NAME_RE, ERROR_CODE_RE, URL_RE

jieba.setLogLevel(logging.WARNING)

CJK_RUN = r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+"
# Order matters: identifiers before plain words so they survive whole.
TOKEN_RE = re.compile(
    r"(?P<api>[a-z][a-z]+(?:\.[a-z][a-z0-9]+)+)"  # FailedOperation.SignatureIncorrectOrUnapproved
    r"|(?P<code>[a-z]+(?:-[a-z0-9]+)+)"  # W-BLACK, do-not-disturb
    r"|(?P<word>[a-z0-9_+#]+)"
    rf"|(?P<cjk>{CJK_RUN})"
)
QUOTED_TERM_RE = re.compile(r"[“「《\"]([^”」》\"]{2,10})[”」》\"]")
INVISIBLE_RE = re.compile(r"[\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\x00-\x1f\x7f]")

CHINESE_STOPWORDS = frozenset(
    "的 了 吗 呢 吧 啊 呀 么 嘛 是 在 有 和 与 及 或 我 我们 你 你们 您 他 她 它 这 那 这个 那个 就 都 也 还 "
    "会 能 要 想 请问 请 一下 怎么 怎样 怎么样 如何 什么 为什么 为何 哪些 哪个 哪里 多少 是否 可以 能否 "
    "可不可以 能不能 是不是 有没有 需要 应该 该 呢 个 把 被 给 让 对 从 到 时 后 中 上 下 又 再 很 太 "
    "吗? 啥 咋 咋办 怎么办 怎么回事 一直 还是 但是 但 如果 因为 所以 已经 其他 进行 使用 用 除了 除去".split()
)
ENGLISH_STOPWORDS = frozenset(
    "a an the is are was were be been being do does did to of in on at for with by from as and or "
    "not no it its this that these those i we you he she they my our your me us how what why when "
    "where which who can could should would will shall may might must have has had there here any "
    "some so if then than but about into out up down get got please help except besides".split()
)
STOPWORDS = CHINESE_STOPWORDS | ENGLISH_STOPWORDS
# Chinese runs whose words are kept: a search cuts the same sentences several times (finding the ask of a
# message, BM25, the reranker's ask, focus and words beside a code).
RUNS_CACHED = 4096


def normalize(text: str) -> str:
    """Full-width to half-width, case-folded, invisible characters removed."""
    text = unicodedata.normalize("NFKC", text)
    return INVISIBLE_RE.sub(" ", text).casefold()


def corpus_identifiers(texts: Iterable[str]) -> set[str]:
    """Error codes (1014, 60008) and API error names mentioned in the texts, folded; never the numbers and
    percent-encoded pieces of a link (…/document/product/382/3773, %E7%AD%BE)."""
    found: set[str] = set()
    for text in texts:
        folded = URL_RE.sub(" ", unicodedata.normalize("NFKC", text))
        found.update(name.casefold() for name in API_NAME_RE.findall(folded))
        found.update(ERROR_CODE_RE.findall(folded))
    return found


QUERY_API_NAME_RE = re.compile(r"[a-z]+(?:\.[a-z][a-z0-9]+)+")
# "除了1004、1014这几个，其他…", "other than 1004 and 1014": identifiers the query sets aside.
_IDENTIFIER = rf"(?:{QUERY_API_NAME_RE.pattern}|\d{{4,5}})"
EXCLUDED_RUN_RE = re.compile(
    r"(?:除了|除去|除|不是|不算|except(?: for)?|besides|other than|apart from|aside from|not just|not only|not)\s*"
    rf"({_IDENTIFIER}(?:\s*(?:[,、/和及与跟]|and|or)?\s*{_IDENTIFIER})*)"
)


def _identifiers_in(folded: str) -> set[str]:
    return set(QUERY_API_NAME_RE.findall(folded)) | set(ERROR_CODE_RE.findall(folded))


def excluded_identifiers(text: str) -> set[str]:
    """The identifiers a query sets aside ("除了1004", "other than 1014"), folded."""
    return {name for run in EXCLUDED_RUN_RE.findall(normalize(text)) for name in _identifiers_in(run)}


CODE_RUN_RE = re.compile(r"[A-Za-z0-9_.:\-]+")


def without_identifiers(text: str, identifiers: set[str]) -> str:
    """`text` less every run of code characters that holds one of `identifiers` ("isv.BUSINESS_LIMIT_CONTROL")."""
    return CODE_RUN_RE.sub(lambda run: " " if any(i in normalize(run.group()) for i in identifiers) else run.group(),
                           text)


def query_identifiers(text: str) -> set[str]:
    """Identifier-shaped tokens of a query, in any case ("failedoperation.signature…" too), less those
    the query sets aside."""
    return _identifiers_in(normalize(text)) - excluded_identifiers(text)


def collect_terms(texts: Iterable[str], extra_terms: Iterable[str]) -> list[str]:
    """The domain dictionary: quoted terms of the corpus plus the hand-kept and glossary terms."""
    terms = {term.strip() for term in extra_terms if term.strip()}
    for text in texts:
        for quoted in QUOTED_TERM_RE.findall(unicodedata.normalize("NFKC", text)):
            if re.fullmatch(CJK_RUN, quoted):
                terms.add(quoted)
    return sorted(terms)


CAMEL_WORD_RE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def api_name_words(text: str) -> list[str]:
    """The words of the API error names in the text ("LimitExceeded.PhoneNumberDailyLimit" → limit, exceeded,
    phone, number, daily, limit): a name the corpus never prints still says what it is about."""
    names = API_NAME_RE.findall(unicodedata.normalize("NFKC", text))
    words = (word.casefold() for name in names for word in CAMEL_WORD_RE.findall(name))
    return [word for word in words if word not in STOPWORDS]


class Tokenizer:
    """jieba with the domain dictionary; its cache lives in `cache_dir`, never a shared /tmp."""

    def __init__(self, terms: Iterable[str], cache_dir: Path) -> None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        self._jieba = jieba.Tokenizer()
        self._jieba.tmp_dir = str(cache_dir)
        self._phrases: list[tuple[str, str]] = []  # multi-word ASCII terms: "sdk appid" → "sdk_appid"
        for term in terms:
            folded = normalize(term).strip()
            if " " in folded and folded.isascii():
                self._phrases.append((folded, folded.replace(" ", "_")))
            for run in re.findall(CJK_RUN, folded):
                if len(run) >= 2:
                    self._jieba.add_word(run, freq=max(20000, 5000 * len(run)))
        self._phrases.sort(key=lambda pair: -len(pair[0]))
        self._words = lru_cache(maxsize=RUNS_CACHED)(self._cut)

    def _cut(self, run: str) -> tuple[str, ...]:
        return tuple(t for t in self._jieba.cut_for_search(run) if t not in STOPWORDS)

    def forget(self) -> None:
        """Empty the cache of cut runs (a benchmark times a search's tokenizing as a new query's)."""
        self._words.cache_clear()

    def tokens(self, text: str) -> list[str]:
        name_words = api_name_words(text)
        text = normalize(text)
        for phrase, joined in self._phrases:
            text = text.replace(phrase, joined)
        out: list[str] = []
        for match in TOKEN_RE.finditer(text):
            kind, token = match.lastgroup, match.group()
            if kind == "cjk":
                out.extend(self._words(token))
            elif kind == "code" or (kind == "word" and "_" in token):
                out.append(token)
                out.extend(p for p in re.split(r"[-_]", token) if p and p not in STOPWORDS)
            elif token not in STOPWORDS:
                out.append(token)
        return out + name_words
