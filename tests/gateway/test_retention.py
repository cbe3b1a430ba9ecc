"""Conversations idle past ``HOTLINE_CONVERSATION_KEEP_DAYS`` are forgotten; their tickets stay."""

from __future__ import annotations

import time
from typing import Any

import httpx

from gateway import keys
from gateway.console import keys as console_keys
from gateway.workers import prune_conversations
from tests.conftest import wait_for_events
from tests.gateway.test_web_e2e import file_ticket, new_session, say

DAY = 24 * 3600


async def chat(client: httpx.AsyncClient, text: str) -> str:
    """A citizen who said ``text`` and heard the bot; returns the conversation key."""
    session = await new_session(client)
    await say(client, session, text)
    await wait_for_events(client, session, lambda e: e["type"] == "reply")
    return f"web:{session['session_id']}"


async def age(redis: Any, key: str, days: float) -> None:
    """As if the citizen last wrote ``days`` ago."""
    await redis.zadd(keys.CONVERSATIONS, {key: time.time() - days * DAY})


async def test_idle_conversations_are_forgotten_unless_their_matter_is_alive(
    app: Any, client: httpx.AsyncClient
) -> None:
    rt = app.state.runtime
    redis = rt.redis
    idle = await chat(client, "请问居住证办理需要什么材料")
    await redis.hset(console_keys.draft(idle), "title", "居住证")  # an operator's draft of it
    filed_session = await new_session(client)
    ticket_id, _ = await file_ticket(client, filed_session)
    filed = f"web:{filed_session['session_id']}"
    waiting = await chat(client, "转人工")
    recent = await chat(client, "小区门口路灯不亮")
    for key in (idle, filed, waiting):
        await age(redis, key, 181)
    assert await redis.exists(keys.conversation(idle), keys.history(idle), console_keys.draft(idle)) == 3

    assert await prune_conversations(rt, time.time()) == 1
    assert await redis.exists(keys.conversation(idle), keys.history(idle), console_keys.draft(idle)) == 0
    assert await redis.zscore(keys.CONVERSATIONS, idle) is None
    # kept: a ticket that moved within the period, someone handling it, a citizen who wrote lately
    for key in (filed, waiting, recent):
        assert await redis.exists(keys.conversation(key), keys.history(key)) == 2, key
    assert (await rt.tickets.get(ticket_id)).conversation_key == filed
    assert await prune_conversations(rt, time.time()) == 0  # nothing more to forget

    # Half a year on, the ticket long closed and the conversation idle: forgotten; the ticket stays.
    later = time.time() + 200 * DAY
    assert await prune_conversations(rt, later) == 2  # and the one that wrote "lately"
    assert await redis.exists(keys.conversation(filed), keys.history(filed)) == 0
    assert await redis.exists(keys.conversation(waiting)) == 1  # still waiting for a person
    assert (await rt.tickets.get(ticket_id)).ticket_id == ticket_id


async def test_a_citizen_who_writes_during_the_scan_is_not_forgotten(
    app: Any, client: httpx.AsyncClient
) -> None:
    rt = app.state.runtime
    session = await new_session(client)
    await say(client, session, "请问居住证办理需要什么材料")
    key = f"web:{session['session_id']}"
    await wait_for_events(client, session, lambda e: e["type"] == "reply")
    await age(rt.redis, key, 181)
    real = rt.tickets.list_for

    async def citizen_writes_meanwhile(conversation_key: str, limit: int = 10) -> Any:
        await say(client, session, "还有，需要带照片吗")  # lands between the scan and the forgetting
        return await real(conversation_key, limit)

    rt.tickets.list_for = citizen_writes_meanwhile
    try:
        assert await prune_conversations(rt, time.time()) == 0
    finally:
        rt.tickets.list_for = real
    assert await rt.redis.exists(keys.conversation(key), keys.history(key)) == 2


async def test_keep_days_zero_keeps_everything(app: Any, client: httpx.AsyncClient) -> None:
    rt = app.state.runtime
    key = await chat(client, "你好")
    await age(rt.redis, key, 10_000)
    rt.settings = rt.settings.model_copy(update={"conversation_keep_days": 0})
    assert await prune_conversations(rt, time.time()) == 0
    assert await rt.redis.exists(keys.conversation(key)) == 1
