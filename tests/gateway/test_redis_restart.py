"""Redis goes away and comes back: requests get a clear 503 meanwhile, nothing accepted is lost,
and the workers carry on by themselves once it is back."""

from __future__ import annotations

import asyncio

import httpx

from config.settings import Settings
from tests.conftest import wait_for_events
from tests.gateway.test_web_e2e import new_session, say
from tests.redis_fixtures import RedisProcess


async def test_redis_restart(settings: Settings, own_redis: RedisProcess) -> None:
    from gateway.app import create_app

    application = create_app(settings.model_copy(update={"redis_url": own_redis.url}), workers=False)
    rt = application.state.runtime
    await rt.start(workers=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as c:
            session = await new_session(c)
            assert (await say(c, session, "A3区联丰路米兰春天小区门口的路灯坏了")).status_code == 202

            own_redis.stop()
            r = await say(c, session, "还有人行道的地砖也松了")
            assert r.status_code == 503
            assert r.headers["retry-after"] == "5" and "稍后重试" in r.json()["detail"]
            assert (await c.get("/healthz")).status_code == 503

            rt.start_workers(1)  # workers start while Redis is down: they wait and retry
            await asyncio.sleep(1)
            own_redis.start()  # same folder: the AOF brings back what was accepted
            events, _ = await wait_for_events(c, session, lambda e: e["type"] == "reply" and "确认" in e["text"], timeout=20)
            assert any("路灯" in e["text"] for e in events if e["type"] == "reply")
            assert (await c.get("/healthz")).status_code == 200
    finally:
        await rt.stop()
