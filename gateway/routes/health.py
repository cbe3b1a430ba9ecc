"""Liveness/readiness and Prometheus metrics."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from channels.portal.pull import state_key as pull_state_key
from gateway import keys, metrics
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
            metrics.DEAD_WAITING.set(await rt.redis.llen(keys.DEAD_LETTERS))
            for source, config in rt.settings.portal.items():
                if config.pull_url:  # an alert on its age catches a source that stopped answering
                    pulled_at = float(await rt.redis.hget(pull_state_key(source), "pulled_at") or 0)
                    metrics.PULL_AGE.labels(source).set(round(time.time() - pulled_at, 1) if pulled_at else -1)
        except (RedisError, OSError):
            pass  # /metrics still answers while Redis is down; /healthz reports it
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)
