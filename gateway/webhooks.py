"""The hot webhook path: channels' ``Webhook``s answered before the framework's middleware and routing.

A WeChat push is small and must be answered at once, at whatever rate the platform sends; the
generic stack (exception middlewares, CORS, router, request/response objects) costs about as much
as verifying, decrypting and enqueueing the push itself. Here the path's prefix is one dict lookup,
the body is read with its limit, and errors get the same answers as everywhere (``errors.answer``).
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl

import structlog
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from channels.base import BadRequest, HookRequest, PayloadTooLarge, Webhook
from gateway import errors, metrics

log = structlog.get_logger(__name__)


class HotPath:
    def __init__(self, hooks: list[Webhook], max_body_bytes: int) -> None:
        self.hooks = {(h.method, "/channels" + h.prefix): h for h in hooks}
        self.max_body_bytes = max_body_bytes
        self._timers = {h.label: metrics.ACK_SECONDS.labels(h.label) for h in hooks}

    def match(self, scope: Scope) -> tuple[Webhook, str] | None:
        if not self.hooks or scope["type"] != "http":
            return None
        head, _, param = scope["path"].rpartition("/")
        hook = self.hooks.get((scope["method"], head + "/"))
        return (hook, param) if hook is not None and param else None

    async def serve(self, hook: Webhook, param: str, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        try:
            length = next((v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"content-length"), None)
            body = await _body(receive, length, min(hook.max_body_bytes, self.max_body_bytes))
            query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
            response = await hook.handler(HookRequest(param, query, scope["headers"], body))
        except Exception as exc:  # noqa: BLE001 - every error gets an answer; unknown ones a 500
            known = errors.answer(exc)
            if known is None:
                log.exception("webhook_failed", route=hook.label)
                known = PlainTextResponse("Internal Server Error", status_code=500)
            response = known
        await response(scope, receive, send)
        self._timers[hook.label].observe(time.perf_counter() - started)


async def _body(receive: Receive, length: str | None, limit: int) -> bytes:
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise PayloadTooLarge("请求内容过大") if length.isdigit() else BadRequest("Content-Length 不正确")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest("客户端已断开")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge("请求内容过大")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
