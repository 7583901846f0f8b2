"""What every response carries, whatever produced it: security headers, a JSON error instead of a traceback,
a bound on request bodies; and the validation of `--allow-embed` origins."""

from __future__ import annotations

import json
import re
import sys
import traceback

from starlette.responses import JSONResponse

from assistant.errors import AssistantError

MAX_BODY_BYTES = 1 << 20  # the API's largest legitimate body is a 10,000-character query
ORIGIN_RE = re.compile(
    r"^(?P<scheme>https?)://(?P<wildcard>\*\.)?"
    r"(?P<host>(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?|\[[0-9a-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
)


class EmbedOriginError(AssistantError, ValueError):
    """An --allow-embed value is not an origin a browser could be framed by."""


def embed_origin(value: str) -> str:
    """`scheme://host[:port]` (http or https, optionally `*.` before the host), lower-cased; else EmbedOriginError."""
    shown = json.dumps(value[:80]) if isinstance(value, str) else repr(type(value))
    hint = "give origins like https://help.example.com, http://localhost:8080 or https://*.example.com"
    if not isinstance(value, str) or not value.strip():
        raise EmbedOriginError(f"--allow-embed: an empty origin is not allowed; {hint}")
    candidate = value.lower()
    candidate = candidate[:-1] if candidate.endswith("/") and candidate.count("/") == 3 else candidate
    match = ORIGIN_RE.fullmatch(candidate)
    if match is None:
        raise EmbedOriginError(f"--allow-embed: {shown} is not an origin (scheme://host[:port]); {hint}")
    if match["wildcard"] and "." not in match["host"]:
        raise EmbedOriginError(f"--allow-embed: {shown} is too wide; a wildcard needs a domain, e.g. https://*.example.com")
    if match["port"] is not None and not 1 <= int(match["port"]) <= 65535:
        raise EmbedOriginError(f"--allow-embed: {shown} has no valid port (1-65535)")
    return candidate


def embed_origins(values: list[str] | None) -> list[str]:
    return list(dict.fromkeys(embed_origin(v) for v in values or []))


def frame_ancestors(allow_embed: list[str]) -> str:
    return "frame-ancestors " + " ".join(["'self'", *embed_origins(allow_embed)])


def security_headers(policy: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
    }


class SafeJSONResponse(JSONResponse):
    """JSON that cannot fail to encode: a lone surrogate becomes its \\u escape instead of a 500."""

    def render(self, content) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", "backslashreplace")


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> SafeJSONResponse:
    return SafeJSONResponse({"error": message}, status_code=status, headers=headers)


class RequestTooLarge(Exception):
    pass


class GuardMiddleware:
    """Pure ASGI, outermost: sets the security headers on every HTTP response (mounted apps included),
    answers anything raised below — in a route, a middleware or a mounted app — with a JSON 500, replaces
    any non-JSON 5xx body (tracebacks, echoed input) and refuses bodies over MAX_BODY_BYTES with a 413."""

    def __init__(self, app, policy: str, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in security_headers(policy).items()]
        self.replaced_names = {k for k, _ in self.headers} | {b"x-frame-options"}
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = {"started": False, "replaced": False, "received": 0}
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await self._send_error(send, 413, f"request body over {self.max_body} bytes", state)
            return

        async def bounded_receive():
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_body:
                    raise RequestTooLarge
            return message

        async def guarded_send(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in self.replaced_names]
                content_type = dict(headers).get(b"content-type", b"")
                if message["status"] >= 500 and not content_type.startswith(b"application/json"):
                    state["replaced"] = True
                    await self._send_error(send, message["status"], "internal error", state)
                    return
                state["started"] = True
                message = {**message, "headers": headers + self.headers}
            elif state["replaced"]:
                return
            await send(message)

        try:
            await self.app(scope, bounded_receive, guarded_send)
        except RequestTooLarge:
            if not state["started"]:
                await self._send_error(send, 413, f"request body over {self.max_body} bytes", state)
        except Exception:  # noqa: BLE001 — the last line of defence: logged, never shown
            traceback.print_exc(file=sys.stderr)
            if not state["started"] and not state["replaced"]:
                await self._send_error(send, 500, "internal error", state)

    async def _send_error(self, send, status: int, message: str, state: dict) -> None:
        state["started"] = True
        body = json.dumps({"error": message}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *self.headers]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
