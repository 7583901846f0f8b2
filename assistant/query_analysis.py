"""Query analysis: the ask inside a long customer message, and the query's words in both languages.

A pasted message ("您好，我们是做电商的……最近用户反馈验证码收不到……请问是什么原因？谢谢") is searched
by its focus: the sentence that asks (question mark, 怎么/如何/为什么/能否/吗, how/why/can/does), the
sentences that carry an error code or API name, and, when the ask itself says little ("怎么办？"),
the sentence before it. Greetings and thanks are dropped. Short queries are their own focus.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace

import numpy as np

from assistant.glossary import Glossary
from assistant.tokenize import Tokenizer, normalize, query_identifiers

LONG_QUERY_CHARS = 60  # below this a query is its own focus
SENTENCE_RE = re.compile(r"[^。！？!?\n；;]+[。！？!?；;]*|[。！？!?；;]+")
ENGLISH_SENTENCE_RE = re.compile(r"(?<=[a-z0-9)\"']\.)\s+(?=[A-Za-z])")
ASK_ZH = ("怎么", "怎样", "如何", "为什么", "为何", "能否", "能不能", "可否", "可不可以", "是否", "有没有",
          "是不是", "会不会", "多少", "多久", "哪些", "哪里", "哪个", "什么", "啥", "咋", "吗", "么", "呢",
          "请问", "求助", "想问", "想知道", "麻烦看下")
ASK_EN_RE = re.compile(
    r"^\s*(how|why|what|when|where|which|who|can|could|does|do|did|is|are|will|would|should|may)\b"
    r"|\b(is there|are there|how do|how can|how to|why does|why is|can i|can we|do you|does it|"
    r"i want to know|i'd like to know|wondering|please advise|any idea)\b"
)
GREETING_RE = re.compile(
    r"^\s*(你好|您好|hi|hello|hey|dear\b.*|客服你好|在吗|谢谢|感谢|多谢|thanks|thank you|thx|regards|best|"
    r"辛苦了|麻烦了|急|急急急|拜托|cheers)[\s,，!！。.~]*$"
)

LEADING_GREETING_RE = re.compile(r"^\s*(你好|您好|客服你好|hi|hello|hey|dear [a-z ]{0,20}?|hi team|hello team)[\s,，!！:：~]+",
                                 re.IGNORECASE)
# The message puts its pasted code behind it, fixed or set aside for another matter ("1004的问题修好了，但是…",
# "Fixed X by splitting the list.", "W-BLACK 的就算了", "顺便问一下"): what it asks is about something else.
CODE_BEHIND_RE = re.compile(
    r"修好|修复了|已修复|解决了|已解决|搞定|处理好了|弄好了|改好了|不报了|不再报|报错没了|错误没了|没再报|能发了|恢复了"
    r"|已经好了|已经修|已经改|改完|校准好了|后好了|就好了|查出来是|先不管|暂时不管|先放一边"
    r"|就算了|我知道|我懂|顺便问|另外|还有个事|还有一个问题|另一个问题|再问一下|题外话|跟这个没关系|和这个无关"
    r"|\bfixed\b|\bresolved\b|\bsolved\b|sorted (?:it |that )?out|got rid of|got past|no longer (?:get|see|return|throw)"
    r"|went away|(?:is|are) gone|works now|working now|(?:is|are) fine now|set(?:ting)? (?:that|this|it) aside"
    r"|ignore (?:that|this|it)\b|while I have you|after (?:fixing|solving|switching|changing|splitting)|now that\b"
    r"|\bunrelated\b|separate question|another question|different question|bigger question|one more thing"
    r"|by the way|\bbtw\b|on another note|\bmeanwhile\b|apart from|aside from",
    re.IGNORECASE,
)


@dataclass
class AnalysedQuery:
    """What the pipeline searches by: the full text, its focus, and the words that decide."""

    text: str
    focus: str  # what the channels search: the message without greetings and thanks
    ask: str = ""  # the sentence(s) that ask; the reranker checks their words against each entry
    identifiers: set[str] = field(default_factory=set)
    expansions: list[str] = field(default_factory=list)  # glossary terms the query's words bring in
    vector: np.ndarray | None = None  # embedding of the focus
    offtopic_margin: float = 0.0  # best entry cosine minus best off-topic question cosine
    code_behind: bool = False  # the message puts the code it pastes behind it: fixed, or set aside
    # entries printing the identifiers, best first, whatever the search's filters (set by the searcher)
    code_rows: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        self.ask = self.ask or self.focus

    def searched_with(self, meanings: list[str]) -> "AnalysedQuery":
        """The query searched also by `meanings` (of error codes the corpus never prints)."""
        return replace(self, focus=" ".join([self.focus, *meanings]), expansions=[*self.expansions, *meanings])

    @property
    def ask_words(self) -> str:
        """The ask less the words that put its code behind it ("修好了", "by the way"): what the reranker weighs."""
        return CODE_BEHIND_RE.sub(" ", unicodedata.normalize("NFKC", self.ask)) if self.code_behind else self.ask

    @property
    def is_long(self) -> bool:
        return self.ask != self.text

    @property
    def english(self) -> bool:
        letters = sum(c.isascii() and c.isalpha() for c in self.text)
        cjk = sum("\u4e00" <= c <= "\u9fff" for c in self.text)
        return letters > 3 * cjk


def sentences(text: str) -> list[str]:
    pieces = []
    for piece in SENTENCE_RE.findall(text):
        pieces.extend(ENGLISH_SENTENCE_RE.split(piece))
    return [p.strip() for p in pieces if p.strip()]


def ask_score(sentence: str) -> int:
    folded = normalize(sentence)
    score = 0
    if "?" in folded:
        score += 3
    if any(marker in folded for marker in ASK_ZH) or ASK_EN_RE.search(folded):
        score += 2
    if query_identifiers(sentence):
        score += 3
    return score


def find_focus(text: str, tokenizer: Tokenizer, vocabulary) -> tuple[str, str]:
    """(the message without greetings, the part that asks); both the whole text when short."""
    if len(text) < LONG_QUERY_CHARS:
        return text, text
    parts = [LEADING_GREETING_RE.sub("", s) for s in sentences(text) if not GREETING_RE.match(normalize(s))]
    parts = [s for s in parts if s.strip()]
    if len(parts) <= 1:
        return (parts[0], parts[0]) if parts else (text, text)

    def known(sentence: str) -> int:
        return sum(1 for t in tokenizer.tokens(sentence) if t in vocabulary)

    scores = [ask_score(s) * 2 + min(known(s), 4) for s in parts]
    best = max(range(len(parts)), key=lambda i: (scores[i], i))
    chosen = {best}
    if known(parts[best]) < 3 and best > 0:
        chosen.add(best - 1)  # "怎么办？" needs the sentence that says what happened
    chosen |= {i for i, s in enumerate(parts) if query_identifiers(s)}
    return " ".join(parts), " ".join(parts[i] for i in sorted(chosen))


def analyse(text: str, tokenizer: Tokenizer, vocabulary, glossary: Glossary) -> AnalysedQuery:
    focus, ask = find_focus(text, tokenizer, vocabulary)
    identifiers = query_identifiers(text)
    behind = bool(identifiers) and CODE_BEHIND_RE.search(normalize(text)) is not None
    return AnalysedQuery(text, focus, ask, identifiers, glossary.expansions(ask), code_behind=behind)
