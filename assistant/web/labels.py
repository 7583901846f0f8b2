"""The chat's words in Chinese and English; one language per answer, edition names translated."""

from __future__ import annotations

import re

CJK_RE = re.compile(r"[\u4e00-\u9fff]")
LATIN_RE = re.compile(r"[A-Za-z]")

LABELS = {
    "zh": {
        "undated": "未注明日期", "lines": "行", "source": "来源", "open": "厂商原文", "view_lines": "查看原文行",
        "same": "答案相同", "punctuation": "仅标点或空格不同", "spelling": "仅用字不同（如 模版/模板）",
        "changed": "答案不同", "translation": "译文（另一语言）", "note": "注意", "editions": "其他版本（当前显示：{edition}；{n} 个）", "related": "相关条目",
        "possibly": "可能相关的条目", "abstain": "没有找到能回答这个问题的 FAQ 条目。", "no_answer": "（文档中没有答案）",
        "copy": "复制答案", "copy_cited": "复制答案和来源", "helpful": "有帮助", "unhelpful": "没有帮助",
        "why": "哪里不对？（可选）", "send": "提交", "filters": "当前筛选", "removed": "该版本有、当前答案没有",
        "added": "当前答案新增", "next": "可以：", "rephrase": "换个说法，或只输入错误码 / API 错误名（如 1014）",
        "widen": "取消筛选再搜一次", "handover": "转交人工：请联系二线支持。", "vendor": "厂商", "edition": "版本",
        "latest": "最新版", "all": "全部版本", "widened": "已取消筛选重新搜索（筛选框里的设置未改）。",
    },
    "en": {
        "undated": "undated", "lines": "lines", "source": "Source", "open": "vendor page", "view_lines": "view source lines",
        "same": "same answer", "punctuation": "punctuation or spacing only", "spelling": "spelling only (e.g. 模版/模板)",
        "changed": "answer differs", "translation": "translation (other language)", "note": "Note", "editions": "Other editions (shown: {edition}; {n})", "related": "Related entries",
        "possibly": "Possibly related", "abstain": "No FAQ entry answers this.", "no_answer": "(no answer in the document)",
        "copy": "Copy answer", "copy_cited": "Copy with source", "helpful": "Helpful", "unhelpful": "Not helpful",
        "why": "What was wrong? (optional)", "send": "Send", "filters": "Filters", "removed": "in that edition only",
        "added": "in the answer shown only", "next": "You can:",
        "rephrase": "Rephrase, or type just the error code / API error name (e.g. 1014)",
        "widen": "Search again without filters", "handover": "Hand over to a person: contact second-line support.",
        "vendor": "vendor", "edition": "edition", "latest": "latest", "all": "all editions",
        "widened": "Searched again without filters (the filter settings are unchanged).",
    },
}
# Words of the manifest's edition labels, in Chinese (longest first).
EDITION_WORDS_ZH = (
    ("Web page edition", "网页版"), ("PDF edition", "PDF 版"), ("Markdown edition", "Markdown 版"),
    ("undated", "未注明日期"), ("edition", "版"),
)


def language_of(text: str) -> str:
    return "zh" if CJK_RE.search(text or "") else "en"


def edition_name(label: str, lang: str) -> str:
    if lang != "zh":
        return label
    for english, chinese in EDITION_WORDS_ZH:
        label = label.replace(english, chinese)
    return label.replace(" (", "（").replace("(", "（").replace(")", "）").replace(", ", "，")


def vendor_name(name: str, lang: str) -> str:
    """The part of a bilingual vendor name ("腾讯云 Tencent Cloud") in the answer's language."""
    words = name.split()
    wanted = [w for w in words if bool(CJK_RE.search(w)) == (lang == "zh")]
    return " ".join(wanted) or name
