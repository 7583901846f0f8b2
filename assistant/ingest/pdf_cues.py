"""What a paragraph's own wording says about its place in an answer.

Numbered items ('2.1'), announcements ('…如下：'), examples ('示例：'), notes
('说明：'), labelled items ('国内短信：…') and closing remarks ('更多详情请参见…')
follow the conventions of Chinese product documentation; `pdf_align` weighs them
next to order, shared words, meaning and other editions.
"""

from __future__ import annotations

import re

LIST_NUMBER_RE = re.compile(r"^\s*(\d+(?:\.\d+)*)[.、]?\s")
# Closing remarks, also as the last numbered step ('3. 如果以上场景都不满足，请咨询…').
CLOSING_RE = re.compile(r"^(?:\d+[.、]\s*)?(更多|详细|详情|如仍|如有|如需|如果还是|如果仍|如果以上)")
LABEL_RE = re.compile(r"^([^：:，。]{1,12})[：:]")
EXAMPLE_PREFIXES = ("示例：", "示例:")
NOTE_PREFIXES = ("说明：", "注意：", "注：")
ANNOUNCING_ENDINGS = ("：", "如下表所示。", "如下图所示。", "如下所示。")
BULLETS = ("-", "•")


def list_number(text: str) -> tuple[int, ...] | None:
    match = LIST_NUMBER_RE.match(text)
    return tuple(int(n) for n in match.group(1).split(".")) if match else None


def follows_in_list(previous: tuple[int, ...] | None, current: tuple[int, ...] | None) -> bool:
    """'1.' → '1.1', '1.1' → '1.2', '1.2' → '2.': the next item of the same list."""
    if not previous or not current:
        return False
    if current == previous + (1,):
        return True
    return any(current == previous[:level] + (previous[level] + 1,) for level in range(len(previous)))


def label(text: str) -> str | None:
    """'国内短信' of '国内短信：…'."""
    match = LABEL_RE.match(text)
    return match.group(1) if match else None


def is_closing(text: str) -> bool:
    return bool(CLOSING_RE.match(text))


def is_note(text: str) -> bool:
    return text.startswith(NOTE_PREFIXES)


def is_example(text: str) -> bool:
    return text.startswith(EXAMPLE_PREFIXES)


def announces(text: str) -> bool:
    """'…如下：', '…如下表所示。': the paragraph announces a list, a table or steps."""
    return text.rstrip().endswith(ANNOUNCING_ENDINGS)


def is_bare_announcement(text: str) -> bool:
    """'…如下：' on its own, not an item that ends so ('国内短信：…如下图所示：', '2.2 …：')."""
    return text.endswith("：") and label(text) is None and list_number(text) is None


def inside_lists(texts: list[str], previous_number: tuple[int, ...] | None) -> list[bool]:
    """For each position: would starting a new answer there break a numbered list?"""
    inside = [False] * len(texts)
    previous_index = -1
    for index, text in enumerate(texts):
        number = list_number(text)
        if number is None:
            continue
        if follows_in_list(previous_number, number):
            for position in range(previous_index + 1, index + 1):
                inside[position] = True
        previous_index, previous_number = index, number
    return inside


def announces_elsewhere(texts: list[str], position: int) -> bool:
    """An announcement whose body is not the paragraph after it (that one is no item of its list)."""
    if not announces(texts[position]):
        return False
    following = texts[position + 1] if position + 1 < len(texts) else ""
    return not follows_in_list(list_number(texts[position]), list_number(following))


def announces_other_text_next(texts: list[str], position: int) -> bool:
    """An announcement followed by a paragraph that is neither numbered nor bulleted."""
    if position + 1 >= len(texts) or not announces(texts[position]):
        return False
    following = texts[position + 1]
    return list_number(following) is None and not following.startswith(BULLETS)


def dangling_list_item(texts: list[str], position: int) -> bool:
    """'2.2 …：' directly followed by its sibling '2.3': its body was printed elsewhere."""
    number = list_number(texts[position])
    if not number or len(number) < 2 or not announces(texts[position]):
        return False
    following = list_number(texts[position + 1]) if position + 1 < len(texts) else None
    return following is not None and len(following) <= len(number) and following != number + (1,)


def binds_to_previous(texts: list[str]) -> list[bool]:
    """Paragraphs that cannot open an answer of their own after the one before them.

    '…如下：' then '1. …': the steps it announces; '示例：…' then the explanation it
    illustrates (the export prints the example first).
    """
    binds = [False] * len(texts)
    for position in range(1, len(texts)):
        previous = texts[position - 1]
        announced = list_number(texts[position]) == (1,) and announces(previous)
        binds[position] = announced or is_example(previous)
    return binds
