"""回访 reminders: a citizen who neither answered the survey of a resolved ticket nor wrote since is
asked once more, HOTLINE_SURVEY_REMIND_HOURS later; nobody else is."""

from __future__ import annotations

import time
from typing import Any

import httpx

from gateway import keys
from gateway.workers import remind_surveys
from tests.conftest import ADMIN_TOKEN, wait_for_events
from tests.gateway.test_progress_notes import draft, heard
from tests.gateway.test_web_e2e import new_session, say

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
LATER = 25 * 3600  # past the default 24 hours


async def resolved(client: httpx.AsyncClient, app: Any, key: str) -> tuple[dict[str, str], str, str]:
    """A widget citizen whose ticket was resolved and who got its survey: (session, ticket, cursor)."""
    session = await new_session(client)
    ref = await app.state.runtime.tickets.file(draft(f"web:{session['session_id']}"), key)
    for status in ("accepted", "resolved"):
        r = await client.post(f"/api/admin/tickets/{ref.ticket_id}/status", json={"status": status}, headers=ADMIN)
        assert r.status_code == 200, r.text
    _, cursor = await wait_for_events(client, session, lambda e: e["type"] == "survey")
    return session, ref.ticket_id, cursor


def surveys(events: list[dict[str, Any]]) -> list[str]:
    return [e["text"] for e in events if e["type"] == "survey"]


async def test_an_unanswered_survey_is_asked_once_more(client: httpx.AsyncClient, app: Any) -> None:
    rt = app.state.runtime
    session, ticket_id, cursor = await resolved(client, app, "quiet")
    assert await rt.redis.zcard(keys.SURVEY_REMINDERS) == 1
    assert await remind_surveys(rt, time.time()) == 0  # not yet: a day from now
    assert await remind_surveys(rt, time.time() + LATER) == 1
    events, cursor = await wait_for_events(client, session, lambda e: e["type"] == "survey", after=cursor)
    [again] = [e for e in events if e["type"] == "survey"]
    assert again["text"].startswith(f"您的工单 {ticket_id} 已办理完毕，您对办理结果还满意吗？")
    assert again["buttons"] == ["满意", "基本满意", "不满意"] and again["ticket_id"] == ticket_id
    assert await remind_surveys(rt, time.time() + 2 * LATER) == 0  # once
    await say(client, session, "满意")  # the reminder is answered as the survey was
    await wait_for_events(client, session, lambda e: e["type"] == "reply" and "感谢您的评价" in e["text"], after=cursor)
    assert (await rt.tickets.get(ticket_id)).rating == "满意"


async def test_nobody_who_answered_or_wrote_since_is_asked_again(client: httpx.AsyncClient, app: Any) -> None:
    """Rated; said 不评了 (the survey stays open, but they saw it); the ticket reopened meanwhile."""
    rt = app.state.runtime
    rated, rated_id, cursor = await resolved(client, app, "rated")
    await say(client, rated, "基本满意")
    await wait_for_events(client, rated, lambda e: e["type"] == "reply" and "感谢您的评价" in e["text"], after=cursor)
    declined, declined_id, cursor = await resolved(client, app, "declined")
    await say(client, declined, "不评了")
    await wait_for_events(client, declined, lambda e: e["type"] == "reply" and "不打扰您了" in e["text"], after=cursor)
    reopened, reopened_id, _ = await resolved(client, app, "reopened")
    r = await client.post(f"/api/admin/tickets/{reopened_id}/status", json={"status": "reopened"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert await rt.redis.zcard(keys.SURVEY_REMINDERS) == 3

    assert await remind_surveys(rt, time.time() + LATER) == 0
    assert await rt.redis.zcard(keys.SURVEY_REMINDERS) == 0  # each looked at once, and gone
    for session, ticket_id in ((rated, rated_id), (declined, declined_id), (reopened, reopened_id)):
        assert len(surveys(await heard(client, session, ticket_id))) == 1


async def test_no_reminder_is_kept_when_they_are_off(client: httpx.AsyncClient, app: Any) -> None:
    rt = app.state.runtime
    rt.settings.survey_remind_hours = 0  # HOTLINE_SURVEY_REMIND_HOURS=0
    await resolved(client, app, "off")
    assert await rt.redis.zcard(keys.SURVEY_REMINDERS) == 0
