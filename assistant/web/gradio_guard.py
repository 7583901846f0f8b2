"""What the Gradio app must not offer here: uploads, monitoring, its proxy, foreign origins with credentials.

A plain ASGI middleware (Gradio streams its queue over server-sent events)."""

from __future__ import annotations

import json
import logging
import re

log = logging.getLogger(__name__)

BLOCKED_RE = re.compile(r"/(?:gradio_api/(?:upload|upload_progress|runs|run-history)|monitoring)(?:[/?]|$)|/gradio_api/proxy=")
CALL_RE = re.compile(r"/gradio_api/call/")
# Named calls (POST): only the endpoints the app declares public may be called this way.
NAMED_CALL_RE = re.compile(r"/gradio_api/(?:run|api|call|call/v2)/(?P<name>[^/]+)/?$")
CORS_HEADERS = {b"access-control-allow-origin", b"access-control-allow-credentials"}


def _own_origin(scope) -> str:
    headers = dict(scope.get("headers") or [])
    host = headers.get(b"host", b"").decode("latin-1")
    return f"{scope.get('scheme', 'http')}://{host}"


async def _send_json(send, status: int, error: str) -> None:
    body = json.dumps({"error": error}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"x-content-type-options", b"nosniff")]})
    await send({"type": "http.response.body", "body": body})


class GradioGuard:
    def __init__(self, app) -> None:
        self.app = app
        self._public: set[str] | None = None

    def public_endpoints(self) -> set[str]:
        if self._public is None:
            fns = self.app.get_blocks().fns.values()
            self._public = {fn.api_name for fn in fns if fn.api_visibility == "public" and fn.api_name}
        return self._public

    def _refused(self, scope) -> bool:
        path = scope.get("path", "")
        if BLOCKED_RE.search(path):
            return True
        named = NAMED_CALL_RE.search(path) if scope.get("method") == "POST" else None
        return bool(named) and named.group("name") not in self.public_endpoints()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if self._refused(scope):
            return await _send_json(send, 404, "not available on this server")
        origin = dict(scope.get("headers") or []).get(b"origin", b"").decode("latin-1")
        foreign = bool(origin) and origin != _own_origin(scope)
        failed = False  # Gradio answered 500: its plain-text body is replaced by a JSON error

        async def guarded_send(message):
            nonlocal failed
            if message["type"] == "http.response.start":
                if message["status"] >= 500:
                    failed = True
                    return
                if foreign:
                    message = {**message, "headers": [(k, v) for k, v in message["headers"]
                                                      if k.lower() not in CORS_HEADERS]}
            elif failed:
                return
            await send(message)

        try:
            await self.app(scope, receive, guarded_send)
        except Exception:
            if not failed:
                raise
        if failed:
            # A v2 call whose body does not fit the endpoint fails while Gradio builds its arguments.
            if CALL_RE.search(path):
                await _send_json(send, 422, "the request does not match the endpoint's parameters; "
                                            "see /gradio_api/info")
            else:
                log.error("the chat UI failed on %s", path)
                await _send_json(send, 500, "internal error")


def guard_gradio_mounts(app) -> None:
    """Wraps every Gradio app mounted on `app` (inside the app's own middleware, so errors get its headers)."""
    from starlette.routing import Mount

    for route in app.router.routes:
        if isinstance(route, Mount) and not isinstance(route.app, GradioGuard):
            route.app = GradioGuard(route.app)
