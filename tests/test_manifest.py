"""Manifest schema 2: checked keys, editions of several files, languages, aliases, documented keys."""

from __future__ import annotations

import re

import pytest

from assistant.config import PROJECT_ROOT
from assistant.errors import ManifestError
from assistant.ingest import ingest_corpus, load_corpus_manifest
from assistant.ingest.manifest import DATE_KEYS, EDITION_KEYS, FILE_KEYS, LINKING_KEYS, TOP_KEYS, VENDOR_KEYS
from helpers import make_corpus


def _edit(manifest_path, old: str, new: str):
    text = manifest_path.read_text(encoding="utf-8")
    assert old in text
    manifest_path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return manifest_path


@pytest.mark.parametrize("old,new,message", [
    ('label = "A edition"', 'lable = "A edition"', r"unknown key 'lable' \(did you mean 'label'\?\)"),
    ('aliases = [', 'alias = [', r"vendors\.tencent: unknown key 'alias' \(did you mean 'aliases'\?\)"),
    ('files = [{ path = "a.txt" }]', 'files = [{ path = "a.txt", ur = "https://x" }]',
     r"doc-a files\[0\]: unknown key 'ur' \(did you mean 'url'\?\)"),
    ('schema = 2', 'schema = 2\nedition = []', r"unknown key 'edition' \(did you mean 'editions'\?\)"),
    ('label = "A edition"', 'label = "A edition"\ndates = { publised = "2020-01-01" }',
     r"dates: unknown key 'publised' \(did you mean 'published'\?\)"),
])
def test_unknown_keys_are_named_with_the_closest_valid_key(tmp_path, old, new, message):
    manifest = _edit(make_corpus(tmp_path), old, new)
    with pytest.raises(ManifestError, match=message):
        load_corpus_manifest(manifest)


@pytest.mark.parametrize("old,new,message", [
    ('language = "zh"', 'language = "fr"', r"language must be one of zh, en, got 'fr'"),
    ('language = "zh"\n', '', r"doc-a: missing required key\(s\) language"),
    ('label = "A edition"', 'label = "A edition"\ndates = { published = "2020-02-30" }',
     r"dates\.published: '2020-02-30' is not a date"),
    ('label = "B edition"', 'label = "A edition"', r"duplicate edition labels: A edition"),
    ('label = "A edition"', 'label = "A edition"\npairing_evidence = ["doc-z"]', r"pairing_evidence names doc-z"),
    ('editions = ["doc-a", "doc-b"]', 'editions = ["doc-a"]', r"must order exactly its editions"),
])
def test_bad_values_are_errors(tmp_path, old, new, message):
    manifest = _edit(make_corpus(tmp_path), old, new)
    with pytest.raises(ManifestError, match=message):
        load_corpus_manifest(manifest)


def test_an_edition_of_several_files(tmp_path):
    manifest_path = make_corpus(tmp_path)
    (tmp_path / "c.md").write_text("### 第二页的问题？\n第二页的答案。\n", encoding="utf-8")
    _edit(manifest_path, 'files = [{ path = "b.txt" }]',
          'files = [{ path = "b.txt" }, { path = "c.md", url = "https://example.com/c" }]')
    manifest = load_corpus_manifest(manifest_path)
    edition = manifest.document("doc-b")
    assert [f.rel_path for f in edition.files] == ["b.txt", "c.md"]
    entries = [e for e in ingest_corpus(manifest) if e.doc == "doc-b"]
    last = entries[-1]
    assert last.question == "第二页的问题？" and last.source.path == "c.md"
    assert last.source.url.startswith("https://example.com/c#")
    assert entries[0].source.path == "b.txt" and entries[0].source.url is None
    assert last.id.startswith("doc-b:") and len({e.id for e in entries}) == len(entries)


def test_vendor_names_and_aliases_come_from_the_manifest(manifest):
    assert manifest.vendor_for("腾讯").slug == "tencent"
    assert manifest.vendor_for("QCloud").slug == "tencent"
    assert manifest.vendor_for("阿里云").slug == "aliyun"
    with pytest.raises(ManifestError, match="unknown vendor 'huawei'; valid: tencent, aliyun"):
        manifest.vendor_for("huawei")


def test_bundled_editions_keep_their_ids_and_languages(manifest):
    languages = {d.id: d.language for d in manifest.documents}
    assert languages == {
        "tencent-sms-faq-2025-pdf": "zh", "tencent-sms-faq-md-api3": "zh", "tencent-sms-faq-2018-pdf": "zh",
        "tencent-sms-faq-md-api2": "zh", "aliyun-sms-delivery-faq": "zh",
        "tencent-markdown-faq-pages-zh": "zh", "tencent-markdown-faq-pages-en-international-site": "en",
    }
    assert len(manifest.document("tencent-markdown-faq-pages-zh").files) == 7


def test_every_key_is_documented_in_the_readme():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Corpus manifest", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([a-z_]+)`", section))
    for keys in (TOP_KEYS, VENDOR_KEYS, EDITION_KEYS, FILE_KEYS, LINKING_KEYS, DATE_KEYS):
        assert set(keys) <= documented, set(keys) - documented
