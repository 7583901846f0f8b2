"""The JSON API (OpenAPI at /docs) and the security headers every response carries."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from assistant import __version__
from assistant.errors import AssistantError
from assistant.feedback import FeedbackError
from assistant.search import MAX_TOP_K, QueryError
from assistant.web.service import Service

MAX_QUERY_LENGTH = 10_000  # longer bodies are refused; up to this, search truncates with a notice


class SearchRequest(BaseModel):
    q: str = Field(..., max_length=MAX_QUERY_LENGTH, description="the question, an error code or an API error name")
    top_k: int = Field(5, ge=1, le=MAX_TOP_K)
    vendor: str | None = Field(None, description="tencent or aliyun")
    edition: str | None = Field(None, description="latest (default), all, or a document id")


class FeedbackRequest(BaseModel):
    query: str = Field(..., min_length=1, max_length=MAX_QUERY_LENGTH)
    vote: int = Field(..., description="1 helpful, -1 not helpful")
    entry_ids: list[str] = Field(default_factory=list, max_length=MAX_TOP_K)
    comment: str | None = Field(None, max_length=2000)


def frame_ancestors(allow_embed: list[str]) -> str:
    return "frame-ancestors " + " ".join(["'self'", *allow_embed])


def create_api(service: Service) -> FastAPI:
    app = FastAPI(title="FAQ retrieval assistant", version=__version__,
                  description="Search vendor SMS FAQs; every hit carries its provenance.")
    policy = frame_ancestors(service.allow_embed)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = policy
        if "x-frame-options" in response.headers:
            del response.headers["x-frame-options"]
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"error": f"invalid request: {problems}"}, status_code=422)

    @app.exception_handler(AssistantError)
    async def assistant_error(request: Request, exc: AssistantError):
        status = 400 if isinstance(exc, (QueryError, FeedbackError)) else 503
        return JSONResponse({"error": str(exc)}, status_code=status)

    def run_search(request: SearchRequest) -> dict:
        result = service.search(request.q, request.top_k, request.vendor, request.edition, surface="api")
        data = result.to_json()
        data["build_id"] = service.build_id
        return data

    @app.get("/api/search", summary="Search the FAQ (query string)")
    def search_get(
        q: Annotated[str, Query(max_length=MAX_QUERY_LENGTH)],
        top_k: Annotated[int, Query(ge=1, le=MAX_TOP_K)] = 5,
        vendor: str | None = None,
        edition: str | None = None,
    ) -> dict:
        return run_search(SearchRequest(q=q, top_k=top_k, vendor=vendor, edition=edition))

    @app.post("/api/search", summary="Search the FAQ (JSON body)")
    def search_post(request: SearchRequest) -> dict:
        return run_search(request)

    @app.post("/api/feedback", status_code=201, summary="Record 👍 / 👎 for an answer")
    def feedback(request: FeedbackRequest) -> dict:
        unknown = [i for i in request.entry_ids if service.searcher.entry(i) is None]
        if unknown:
            raise FeedbackError(f"unknown entry ids: {', '.join(unknown[:5])}")
        row = service.feedback.add(request.query, request.vote, request.entry_ids, service.build_id,
                                   request.comment, surface="api")
        return {"id": row, "build_id": service.build_id}

    @app.get("/api/entries/{entry_id}", summary="One FAQ entry with its provenance and editions")
    def entry(entry_id: str):
        found = service.searcher.entry(entry_id)
        if found is None:
            return JSONResponse({"error": f"no entry with id '{entry_id}'"}, status_code=404)
        return found.to_json()

    @app.get("/healthz", summary="Index build, entry count, embedder")
    def healthz() -> dict:
        manifest = service.searcher.index.manifest
        return {
            "status": "ok",
            "build_id": service.build_id,
            "entries": manifest["counts"]["entries"],
            "embedder": manifest["embedder"]["id"],
            "version": __version__,
        }

    return app
