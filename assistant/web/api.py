"""The JSON API (OpenAPI at /docs): search, entries, feedback, health; errors as JSON `{"error": …}`."""

from __future__ import annotations

import sys
import traceback

import anyio
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from assistant import __version__
from assistant.errors import AssistantError
from assistant.feedback import FeedbackError
from assistant.index import BUILD_HINT
from assistant.search import MAX_MESSAGE_CHARS, MAX_TOP_K, QueryError
from assistant.web.security import GuardMiddleware, SafeJSONResponse, error_response, frame_ancestors, security_headers
from assistant.web.service import Service

MAX_FILTER_LENGTH = 100
SEARCH_THREADS = 64  # more than the clients a worker serves at once: a search mostly waits for its embedding batch


class SearchRequest(BaseModel):
    q: str = Field(..., max_length=MAX_MESSAGE_CHARS, description="the question, an error code or an API error name")
    top_k: int = Field(5, ge=1, le=MAX_TOP_K)
    vendor: str | None = Field(None, max_length=MAX_FILTER_LENGTH, description="tencent or aliyun")
    edition: str | None = Field(None, max_length=MAX_FILTER_LENGTH, description="latest (default), all, or a document id")


class FeedbackRequest(BaseModel):
    query: str = Field(..., min_length=1, max_length=MAX_MESSAGE_CHARS)
    vote: int = Field(..., description="1 helpful, -1 not helpful")
    entry_ids: list[Annotated[str, Field(max_length=MAX_FILTER_LENGTH)]] = Field(default_factory=list, max_length=MAX_TOP_K)
    comment: str | None = Field(None, max_length=2000)


class AnyMethodRoute(Route):
    """A route for every method, TRACE and made-up ones included (Starlette routes take GET by default)."""

    def matches(self, scope):
        match, child_scope = super().matches(scope)
        return (Match.FULL if match == Match.PARTIAL else match), child_scope


def create_api(service: Service) -> FastAPI:
    app = FastAPI(title="FAQ retrieval assistant", version=__version__, default_response_class=SafeJSONResponse,
                  description="Search vendor SMS FAQs; every hit carries its provenance.")
    policy = frame_ancestors(service.allow_embed)
    # Outermost: whatever is mounted or added later, every response passes through it.
    app.add_middleware(GuardMiddleware, policy=policy)
    headers = security_headers(policy)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors())
        return error_response(422, f"invalid request: {problems}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(AssistantError)
    async def assistant_error(request: Request, exc: AssistantError):
        status = 400 if isinstance(exc, (QueryError, FeedbackError)) else 503
        return error_response(status, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        # Reached only if something escapes the guard; the traceback goes to the log, never to the client.
        traceback.print_exception(exc, file=sys.stderr)
        return error_response(500, "internal error", headers)

    pool: list[anyio.CapacityLimiter] = []

    async def in_threads(function, *args):
        """Searches run in worker threads (they wait on the shared embedder), never on the event loop."""
        if not pool:
            pool.append(anyio.CapacityLimiter(SEARCH_THREADS))
        return await anyio.to_thread.run_sync(function, *args, limiter=pool[0])

    def run_search(request: SearchRequest) -> dict:
        with service.turn():
            searcher = service.searcher
            result = service.search(request.q, request.top_k, request.vendor, request.edition, surface="api",
                                    searcher=searcher)
            data = result.to_json()
        data["build_id"] = searcher.index.build_id
        return data

    @app.get("/api/search", summary="Search the FAQ (query string)")
    async def search_get(
        q: Annotated[str, Query(max_length=MAX_MESSAGE_CHARS)],
        top_k: Annotated[int, Query(ge=1, le=MAX_TOP_K)] = 5,
        vendor: Annotated[str | None, Query(max_length=MAX_FILTER_LENGTH)] = None,
        edition: Annotated[str | None, Query(max_length=MAX_FILTER_LENGTH)] = None,
    ) -> dict:
        return await in_threads(run_search, SearchRequest(q=q, top_k=top_k, vendor=vendor, edition=edition))

    @app.post("/api/search", summary="Search the FAQ (JSON body)")
    async def search_post(request: SearchRequest) -> dict:
        return await in_threads(run_search, request)

    @app.post("/api/feedback", status_code=201, summary="Record 👍 / 👎 for an answer")
    def feedback(request: FeedbackRequest) -> dict:
        searcher = service.searcher
        unknown = [i for i in request.entry_ids if searcher.entry(i) is None]
        if unknown:
            raise FeedbackError(f"{len(unknown)} of the entry ids are unknown: use the ids of /api/search hits")
        build_id = searcher.index.build_id
        row = service.feedback.add(request.query, request.vote, request.entry_ids, build_id,
                                   request.comment, surface="api")
        return {"id": row, "build_id": build_id}

    @app.get("/api/entries/{entry_id}", summary="One FAQ entry with its provenance and editions")
    def entry(entry_id: str):
        found = service.searcher.entry(entry_id)
        if found is None:
            return error_response(404, "no entry with this id: use the ids of /api/search hits")
        return found.to_json()

    @app.get("/healthz", summary="The build served, whether a newer one is published, entry count, embedder")
    def healthz():
        status = service.holder.status()
        searcher = service.searcher
        manifest = searcher.index.manifest
        body = {
            "status": "ok" if status["usable"] else "unusable",
            **status,
            "entries": manifest["counts"]["entries"],
            "embedder": manifest["embedder"]["id"],
            "version": __version__,
        }
        if not status["usable"]:
            body["error"] = f"the build being served ({status['build_id']}) is gone from disk: {BUILD_HINT}"
        return SafeJSONResponse(body, status_code=200 if status["usable"] else 503)

    @app.get("/readyz", summary="200 when this server can answer searches, 503 otherwise (for load balancers)")
    def readyz():
        if service.holder.status()["usable"]:
            return {"ready": True}
        return SafeJSONResponse({"ready": False, "error": "the index being served is unusable"}, status_code=503)

    # Without these, the chat UI mounted at / would answer unknown API paths and methods with its own 404.
    known = {route.path_format for route in app.routes if route.path_format.startswith(("/api/", "/healthz", "/readyz"))}

    async def wrong_method(request: Request):
        return error_response(405, "this method is not allowed here: see /docs")

    async def no_such_path(request: Request):
        return error_response(404, "no such API endpoint: see /docs")

    for path in sorted(known):
        app.router.routes.append(AnyMethodRoute(path, wrong_method, include_in_schema=False))
    app.router.routes.append(AnyMethodRoute("/api/{rest:path}", no_such_path, include_in_schema=False))

    return app
