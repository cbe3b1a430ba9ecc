"""Handoff triggers: each hands the conversation to a person, names the reason, can be turned off."""

from __future__ import annotations

from typing import Any

import pytest

from bot.dialogue import Bot, Turn
from bot.handoff import HandoffRules, asks_for_person, is_angry, same_complaint
from bot.state import ConversationState
from channels.base import InboundMessage
from config.settings import Settings
from gateway import keys
from nlu.base import Category, Intent, Location, Parse


def parse_of(
    text: str, *, intent: str = "new_request", urgency: bool = False, unsure: bool = False, source: str = "rules"
) -> Parse:
    return Parse(
        text=text,
        intent=Intent(name=intent, confidence=0.9),
        category=Category(level1="城乡建设", confidence=0.2 if unsure else 0.9, low_confidence=unsure),
        urgency=urgency,
        urgency_source=source if urgency else "",
        location=Location(),
    )


async def turn(text: str, state: ConversationState | None = None, rules: HandoffRules | None = None,
               **parse_kw: Any) -> Turn:
    msg = InboundMessage(channel="web", channel_message_id=text[:8], sender="s1", text=text)
    return await Bot(tickets=None).handle(  # type: ignore[arg-type]
        msg, parse_of(text, **parse_kw), state or ConversationState(), "bot", None, rules=rules
    )


@pytest.mark.parametrize("text", ["转人工", "我要人工客服", "帮我找 人工", "能不能转接人工？", "我要找真人"])
async def test_asking_for_a_person(text: str) -> None:
    assert asks_for_person(text)
    t = await turn(text)
    assert (t.mode, t.handoff_reason) == ("waiting", "citizen_asked")
    assert "人工客服" in t.replies[0].text and "3分钟" in t.replies[0].text


async def test_unsure_twice_in_a_row() -> None:
    first = await turn("坏了", unsure=True)  # too short to make out
    assert first.mode is None and first.state.unsure_streak == 1
    second = await turn("就是那个东西啊一直坏的", first.state, unsure=True)
    assert (second.mode, second.handoff_reason) == ("waiting", "nlu_unsure")
    assert second.replies[0].text.startswith("抱歉，我没能准确理解")
    assert second.state.draft is not None  # what was understood stays for the operator
    sure = await turn("小区门口的路灯坏了很久了", first.state, unsure=False)
    assert sure.mode is None and sure.state.unsure_streak == 0


async def test_urgent_keeps_the_draft_for_the_operator() -> None:
    t = await turn("燃气管道漏气了，味道很大，很危险", urgency=True)
    assert (t.mode, t.handoff_reason) == ("waiting", "urgent")
    assert t.state.draft is not None and t.state.draft.urgent
    assert "紧急" in t.replies[0].text


async def test_a_suspected_danger_flags_the_ticket_without_a_handoff() -> None:
    """The learned model's suspicion (疑似紧急) is wrong more often than right: the bot goes on
    collecting the request, and the ticket is filed urgent for the department to look at first."""
    t = await turn("电梯经常坏，物业不管", urgency=True, source="model")
    assert t.mode is None and not t.handoff_reason
    assert t.state.draft is not None and t.state.draft.urgent
    assert "地点" in t.replies[0].text


async def test_angry_and_repeated() -> None:
    assert is_angry("你们到底管不管！！！") and is_angry("什么破系统") and not is_angry("谢谢你们")
    t = await turn("你们到底管不管！！！")
    assert (t.mode, t.handoff_reason) == ("waiting", "angry")
    complaint = "楼下餐馆油烟太大，熏得没法开窗"
    assert same_complaint(complaint, complaint + "。") and not same_complaint("确认", "确认")
    first = await turn(complaint)
    assert first.mode is None
    again = await turn(complaint + "！", first.state)
    assert (again.mode, again.handoff_reason) == ("waiting", "repeated")


async def test_every_trigger_can_be_turned_off() -> None:
    off = HandoffRules(on_ask=False, unsure_turns=0, on_urgent=False, on_angry=False, repeat_turns=0)
    asked = await turn("转人工", rules=off)
    assert asked.mode is None and "12345" in asked.replies[0].text
    for text, kw in (("燃气管道漏气了很危险", {"urgency": True}), ("你们到底管不管！！！", {})):
        assert (await turn(text, rules=off, **kw)).mode is None
    state = ConversationState(unsure_streak=5, last_text="楼下餐馆油烟太大", repeat_streak=3)
    assert (await turn("楼下餐馆油烟太大", state, rules=off, unsure=True)).mode is None
    settings = Settings(_env_file=None, handoff_on_ask=False, handoff_unsure_turns=3)  # type: ignore[call-arg]
    rules = HandoffRules.from_settings(settings)
    assert rules.on_ask is False and rules.unsure_turns == 3 and rules.on_urgent is True


async def test_silent_while_waiting_or_with_an_operator() -> None:
    msg = InboundMessage(channel="web", channel_message_id="m", sender="s1", text="转人工")
    for mode in ("waiting", "operator"):
        t = await Bot(tickets=None).handle(msg, parse_of("转人工"), ConversationState(), mode)  # type: ignore[arg-type]
        assert t.replies == [] and t.mode is None


async def test_closed_conversation_returns_to_the_bot() -> None:
    msg = InboundMessage(channel="web", channel_message_id="m2", sender="s1", text="你好")
    t = await Bot(tickets=None).handle(msg, parse_of("你好", intent="greet"), ConversationState(), "closed")  # type: ignore[arg-type]
    assert t.mode == "bot" and t.replies


async def test_a_citizen_left_waiting_hears_once_that_they_are_in_the_queue(settings: Settings) -> None:
    """The handoff promised a person within minutes; when none has come after
    HOTLINE_HANDOFF_REMIND_AFTER_S the citizen is told once (and may go back to the bot)."""
    import asyncio

    import httpx

    from bot.texts import say
    from gateway.app import create_app
    from tests.conftest import wait_for_events
    from tests.gateway.test_web_e2e import new_session
    from tests.gateway.test_web_e2e import say as send

    application = create_app(settings.model_copy(update={"handoff_remind_after_s": 0.5}))
    await application.state.runtime.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as c:
            session = await new_session(c)
            await send(c, session, "转人工")
            events, cursor = await wait_for_events(c, session, lambda e: e.get("text") == say("handoff_waiting"))
            reminder = next(e for e in events if e.get("text") == say("handoff_waiting"))
            assert reminder["buttons"] == ["继续"]
            await asyncio.sleep(1.5)  # several more rounds of the reminder loop
            r = await c.get(
                f"/channels/web/sessions/{session['session_id']}/events",
                params={"after": cursor, "wait": 0},
                headers={"Authorization": f"Bearer {session['token']}"},
            )
            assert not any(e["text"] == say("handoff_waiting") for e in r.json()["events"])  # once per wait
    finally:
        await application.state.runtime.stop()


async def test_outside_the_hours_people_answer_the_citizen_is_told_when_they_do() -> None:
    """HOTLINE_HANDOFF_HOURS: a handoff at night is still queued (the morning shift sees it), and
    the citizen hears when people are in and that the phone line never closes; by day, the usual."""
    from datetime import datetime

    from bot.texts import say
    from config.workdays import BEIJING

    day = HandoffRules(hours="08:30-21:00")

    async def asks(at: datetime, rules: HandoffRules) -> Any:
        msg = InboundMessage(channel="web", channel_message_id=f"m{at:%H%M}", sender="s1", text="转人工", received_at=at)
        return await Bot(tickets=None).handle(msg, parse_of("转人工"), ConversationState(), "bot", None, rules)  # type: ignore[arg-type]

    night = await asks(datetime(2026, 11, 30, 23, 5, tzinfo=BEIJING), day)
    assert night.mode == "waiting" and night.handoff_reason == "citizen_asked"
    assert [r.text for r in night.replies] == [say("handoff_after_hours", hours="每天8:30—21:00", when="将于明天8:30")]
    assert "工作人员将于明天8:30上班后会尽快回复您" in night.replies[0].text
    dawn = await asks(datetime(2026, 12, 1, 6, 0, tzinfo=BEIJING), day)
    assert "工作人员将于今天8:30上班后" in dawn.replies[0].text
    assert "每天8:30—21:00" in night.replies[0].text and "12345热线（24小时服务）" in night.replies[0].text
    morning = await asks(datetime(2026, 12, 1, 8, 30, tzinfo=BEIJING), day)
    assert morning.mode == "waiting" and "预计" in morning.replies[0].text
    assert "每天" not in (await asks(datetime(2026, 12, 1, 8, 30), HandoffRules())).replies[0].text  # any hour

    overnight = HandoffRules(hours="20:00-08:00")  # a night shift
    assert overnight.hours_said() == "每天20:00—次日8:00"
    assert [overnight.staffed(datetime(2026, 12, 1, h, m, tzinfo=BEIJING)) for h, m in
            ((19, 59), (20, 0), (23, 30), (7, 59), (8, 0))] == [False, True, True, True, False]


async def test_rest_days_keep_their_own_hours_by_the_holiday_calendar(tmp_path: Any) -> None:
    """HOTLINE_HANDOFF_REST_HOURS: weekends and 法定节假日 keep other hours, or none; a 调休 working
    Sunday keeps the working days'; a night shift's morning belongs to the day it began; the
    citizen hears both."""
    from datetime import datetime

    from bot.texts import say
    from config.workdays import BEIJING

    holidays = tmp_path / "holidays.yml"  # a city's own file: the 2027 days the package does not know yet
    holidays.write_text("holidays:\n  - 2027-10-01..2027-10-07\nworkdays:\n  - 2027-09-26\n", encoding="utf-8")
    rules = HandoffRules(hours="08:30-21:00", rest_hours="09:00-17:00", holidays_file=holidays)

    def at(day: str, hm: str) -> datetime:
        return datetime.fromisoformat(f"{day}T{hm}").replace(tzinfo=BEIJING)

    assert [rules.staffed(at(d, hm)) for d, hm in (
        ("2027-09-24", "08:30"), ("2027-09-24", "20:59"),  # a Friday: working hours
        ("2027-09-25", "08:45"), ("2027-09-25", "09:00"), ("2027-09-25", "17:00"),  # a Saturday: rest hours
        ("2027-09-26", "08:30"),  # the 调休 Sunday works
        ("2027-10-04", "08:45"), ("2027-10-04", "16:59"),  # a Monday of 国庆: rest hours
        ("2027-10-08", "08:30"),  # back at work
    )] == [True, True, False, True, False, True, False, True, True]
    assert rules.hours_said() == "工作日8:30—21:00，周末及节假日9:00—17:00"

    closed = rules.model_copy(update={"rest_hours": "off"})
    assert [closed.staffed(at(d, "10:00")) for d in ("2027-09-25", "2027-09-26", "2027-10-01")] == [False, True, False]
    assert closed.hours_said() == "工作日8:30—21:00，周末及节假日暂不提供"
    night = HandoffRules(hours="20:00-08:00", rest_hours="off", holidays_file=holidays)
    # Friday's shift runs into Saturday morning; none begins on Saturday, so Sunday morning is dark
    assert [night.staffed(at(d, hm)) for d, hm in (
        ("2027-09-24", "20:00"), ("2027-09-25", "07:59"), ("2027-09-25", "20:00"), ("2027-09-26", "07:00"))] == [
        True, True, False, False]

    msg = InboundMessage(channel="web", channel_message_id="m1", sender="s1", text="转人工",
                         received_at=at("2027-10-02", "10:00"))
    turn = await Bot(tickets=None).handle(msg, parse_of("转人工"), ConversationState(), "bot", None, closed)  # type: ignore[arg-type]
    assert turn.mode == "waiting" and turn.replies[0].text == say(
        "handoff_after_hours", hours="工作日8:30—21:00，周末及节假日暂不提供", when="将于10月8日（周五）8:30")
    assert rules.when_said(at("2027-10-02", "10:00")) == "明天9:00"  # rest days keep their own hours
    assert "现在不在在线人工服务时间（工作日8:30—21:00，周末及节假日暂不提供）" in turn.replies[0].text


async def test_nobody_is_reminded_of_the_queue_while_nobody_is_in(settings: Settings) -> None:
    from datetime import datetime, timedelta

    from config.workdays import BEIJING
    from gateway.app import create_app
    from gateway.workers import remind_waiting

    now = datetime.now(BEIJING)
    closed = f"{(now + timedelta(hours=1)):%H:%M}-{(now + timedelta(hours=2)):%H:%M}"  # opens in an hour
    application = create_app(settings.model_copy(update={"handoff_hours": closed}))
    rt = application.state.runtime
    await rt.start()
    try:
        await rt.redis.zadd(keys.CONVERSATIONS, {"web:night": now.timestamp()})
        await rt.redis.hset(keys.conversation("web:night"), mapping={"mode": "waiting", "mode_at": now.timestamp() - 3600,
                                                                   "channel": "web"})
        assert await remind_waiting(rt, now.timestamp()) == 0
        rt.settings.handoff_hours = ""  # people in: the same wait is reminded
        assert await remind_waiting(rt, now.timestamp()) == 1
    finally:
        await rt.stop()

