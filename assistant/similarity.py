"""How alike two FAQ questions are, across editions that reword them."""

from __future__ import annotations

from assistant.text import bigrams, content_chars, dice, identifiers

# Terms a vendor renamed between editions, mapped to the newest wording.
RENAMED_TERMS = (("黑名单", "免打扰名单"), ("模版", "模板"))
# Words that frame a question without saying what it is about.
FRAMING_WORDS = (
    "如何处理", "怎么处理", "怎么办", "是什么", "什么是", "错误详解", "详解", "返回",
    "错误码", "错误", "为什么", "如何", "怎么", "是否", "吗", "呢", "请问",
)


def topic_text(question: str) -> str:
    text = content_chars(question)
    for old, new in RENAMED_TERMS:
        text = text.replace(old, new)
    for word in FRAMING_WORDS:
        text = text.replace(word, "")
    return text


def question_similarity(a: str, b: str) -> float:
    """1.0 for the same question reworded; an error code or API name must agree."""
    ids_a, ids_b = identifiers(a), identifiers(b)
    if ids_a and ids_b:
        return 1.0 if ids_a & ids_b else 0.0
    topic_a, topic_b = topic_text(a), topic_text(b)
    if topic_a == topic_b and topic_a:
        score = 1.0
    else:
        score = dice(bigrams(topic_a), bigrams(topic_b))
    return score * (0.5 if ids_a or ids_b else 1.0)
