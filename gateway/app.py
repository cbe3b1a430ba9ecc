"""The FastAPI application factory: channels' routes, the widget, admin API, health and metrics."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.settings import Settings, get_settings
from gateway import errors, metrics
from gateway.console import knowledge as knowledge_admin
from gateway.console import routes as console
from gateway.logging import configure as configure_logging
from gateway.routes import admin, health, media
from gateway.runtime import Runtime
from gateway.webhooks import HotPath

STATIC = Path(__file__).resolve().parent / "static"


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413 before anything reads them; paths matching
    a pattern of ``larger`` (a channel's photo upload) are allowed that pattern's size instead."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = [(re.compile(pattern), size) for pattern, size in (larger or {}).items()]

    def limit(self, path: str) -> int:
        return next((size for pattern, size in self.larger if pattern.fullmatch(path)), self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit(scope["path"]) if self.larger else self.max_bytes
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            await _too_large(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await _too_large(send)


class _TooLarge(Exception):
    pass


async def _too_large(send: Send) -> None:
    body = '{"detail":"请求内容过大"}'.encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class Timing:
    """Observe how long each route takes to answer (webhook acknowledgement latency)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            metrics.ACK_SECONDS.labels(path).observe(time.perf_counter() - started)


class GatewayApp(FastAPI):
    """FastAPI, with the channels' hot webhooks answered before the middleware stack and router."""

    hot: HotPath = HotPath([], 0)  # create_app sets the channels' hooks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (found := self.hot.match(scope)) is not None:
            await self.hot.serve(*found, scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, workers: bool | None = None) -> GatewayApp:
    settings = settings or get_settings()
    settings.ensure_admin_token()
    configure_logging(settings.log_level, settings.log_json)
    runtime = Runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start(workers=workers)
        try:
            await app.state.console.on_start()
            yield
        finally:
            await runtime.stop()

    app = GatewayApp(
        title="hotline-gateway",
        description="12345 政务服务便民热线 multichannel intake gateway",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    errors.install(app)
    hooks = []
    larger: dict[str, int] = {}
    for channel in runtime.channels:
        router = channel.router()
        if router is not None:
            app.include_router(router, prefix="/channels")
        hooks += channel.webhooks()
        body_limits = getattr(channel, "body_limits", None)
        if body_limits is not None:
            larger |= {"/channels" + pattern: size for pattern, size in body_limits().items()}
    app.hot = HotPath(hooks, settings.max_body_bytes)
    app.include_router(health.router)
    app.include_router(admin.router)
    app.include_router(media.router)
    console.install(app)
    app.include_router(knowledge_admin.router)  # 知识库维护
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def demo_page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.widget_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
        allow_credentials=False,
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, larger=larger)
    app.add_middleware(Timing)
    return app


def server_config(app: ASGIApp, settings: Settings, host: str, port: int) -> uvicorn.Config:
    """How ``hotline serve`` serves the app: X-Forwarded-For and -Proto believed from
    ``HOTLINE_TRUSTED_PROXIES`` only, so per-address limits count clients, not the proxy."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
    )
