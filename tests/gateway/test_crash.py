"""A worker killed between reading and acknowledging: the message is claimed again and handled once."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import httpx
import pytest

from config.settings import Settings
from gateway import keys
from tests.conftest import wait_for_events
from tests.gateway.test_web_e2e import new_session, say


@pytest.fixture
async def app_without_workers(settings: Settings) -> Any:
    from gateway.app import create_app

    application = create_app(settings, workers=False)
    await application.state.runtime.start(workers=False)
    yield application
    await application.state.runtime.stop()


@pytest.fixture
async def quiet_client(app_without_workers: Any) -> Any:
    transport = httpx.ASGITransport(app=app_without_workers)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def run_crashing_worker(settings: Settings, fault: str) -> int:
    """Run `hotline worker` with a fault point armed; it dies (exit 137) when it reaches it."""
    env = {
        **os.environ,
        "HOTLINE_FAULT": fault,
        "HOTLINE_REDIS_URL": settings.redis_url,
        "HOTLINE_DATA_DIR": str(settings.data_dir),
        "HOTLINE_ADMIN_TOKEN": settings.admin_token,
        "HOTLINE_CLAIM_IDLE_MS": "60000",
        "HOTLINE_WORKER_CONCURRENCY": "1",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "worker", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        return await asyncio.wait_for(proc.wait(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"worker never reached fault point {fault}") from None


async def pending(app: Any, stream: str) -> int:
    info = await app.state.runtime.redis.xpending(stream, keys.GROUP[stream])
    return int(info["pending"])


async def test_worker_killed_before_commit_message_handled_once(
    settings: Settings, app_without_workers: Any, quiet_client: httpx.AsyncClient
) -> None:
    session = await new_session(quiet_client)
    assert (await say(quiet_client, session, "你好")).status_code == 202

    code = await run_crashing_worker(settings, "inbound_before_commit")
    assert code == 137
    assert await pending(app_without_workers, keys.INBOUND) == 1  # read, never acknowledged

    app_without_workers.state.runtime.start_workers(1)  # claims it after claim_idle_ms
    events, _ = await wait_for_events(quiet_client, session, lambda e: e["type"] == "reply", timeout=15)
    await asyncio.sleep(1.5)  # give a second handling the chance to show up
    events2, _ = await wait_for_events(quiet_client, session, lambda e: e["type"] == "reply")
    assert sum(e["type"] == "reply" for e in events2) == 1
    assert await pending(app_without_workers, keys.INBOUND) == 0


async def test_worker_killed_after_filing_files_one_ticket(
    settings: Settings, app_without_workers: Any, quiet_client: httpx.AsyncClient
) -> None:
    rt = app_without_workers.state.runtime
    session = await new_session(quiet_client)
    rt.start_workers(1)
    await say(quiet_client, session, "A3区联丰路米兰春天小区门口的路灯坏了一个星期了")
    _, cursor = await wait_for_events(quiet_client, session, lambda e: "确认" in e["text"] and e["type"] == "reply")
    await rt.stop_workers()

    await say(quiet_client, session, "确认")
    code = await run_crashing_worker(settings, "outbox_after_file")
    assert code == 137  # died after the ledger filed the ticket, before telling anyone

    rt.start_workers(1)
    events, _ = await wait_for_events(
        quiet_client, session, lambda e: e["type"] == "ticket_filed", after=cursor, timeout=20
    )
    await asyncio.sleep(1.5)
    events, _ = await wait_for_events(quiet_client, session, lambda e: e["type"] == "ticket_filed", after=cursor)
    filed = [e for e in events if e["type"] == "ticket_filed"]
    assert len(filed) == 1
    mine = await rt.tickets.list_for(f"web:{session['session_id']}")
    assert [t.ticket_id for t in mine] == [filed[0]["ticket_id"]]
