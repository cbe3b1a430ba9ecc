"""Liveness/readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from gateway import metrics
from gateway.deps import RuntimeDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz(rt: RuntimeDep) -> JSONResponse:
    """200 when Redis and the ticket ledger answer; 503 naming what is down otherwise."""
    checks = await rt.health()
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "degraded", **checks}, status_code=200 if ok else 503)


@router.get("/metrics")
async def prometheus(rt: RuntimeDep) -> Response:
    if rt.streams is not None:
        try:
            for stream, figures in (await rt.streams.lag()).items():
                metrics.STREAM_LAG.labels(stream).set(figures["lag"])
                metrics.STREAM_PENDING.labels(stream).set(figures["pending"])
        except (RedisError, OSError):
            pass  # /metrics still answers while Redis is down; /healthz reports it
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)
