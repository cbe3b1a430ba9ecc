"""When the bot hands a conversation to a person, and why (the reason is shown in the console queue).

Triggers, each configurable (``HOTLINE_HANDOFF_*``): the citizen asks for a person; the NLU is
unsure several turns in a row; the request is urgent; the citizen is angry; the citizen sends the
same complaint again. The rules are plain data so the gateway builds them from its settings and
passes them with every turn.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from config.workdays import BEIJING, HOLIDAYS_FILE, calendar

REASONS = ("citizen_asked", "nlu_unsure", "urgent", "angry", "repeated", "withdraw", "operator")

ASK_PHRASES = (
    "转人工", "人工客服", "人工服务", "找人工", "要人工", "接人工", "转接人工", "人工坐席",
    "真人", "找客服", "联系客服", "客服在吗", "接线员", "话务员",
)
# 垃圾 and 有病 alone are what citizens report (垃圾清运, 家里有病人: 4 % of real board messages
# hold 垃圾), so only their insulting forms count.
ANGRY_WORDS = (
    "气死", "太气人", "垃圾机器人", "垃圾客服", "垃圾系统", "垃圾服务", "垃圾效率", "什么垃圾", "真垃圾",
    "太垃圾", "一群垃圾", "破机器人", "什么破", "你有病", "有病吧", "神经病", "不像话", "忍无可忍", "太差劲",
    "太过分", "骗子", "废物", "到底管不管", "有没有人管", "没人管", "踢皮球", "敷衍", "愤怒", "投诉你们",
)
_SHOUT = re.compile(r"[!！]{3,}|[?？]{3,}")
_NOISE = re.compile(r"[\s，,。.!！?？、~～…]+")
REPEAT_MIN_CHARS = 6
REPEAT_SIMILARITY = 0.85


class HandoffRules(BaseModel):
    on_ask: bool = True
    unsure_turns: int = 2  # 0 turns the trigger off
    on_urgent: bool = True
    on_angry: bool = True
    on_unsatisfied: bool = True  # 不满意 in the survey: a person follows it up
    repeat_turns: int = 2  # 0 turns the trigger off
    eta_minutes: int = 3
    hours: str = ""  # 在线人工服务时间, "08:30-21:00" in Beijing time ("": any hour)
    # on 休息日 (weekends and 法定节假日, a 调休 working day not among them): "09:00-17:00", "off"
    # (nobody), or "" (as ``hours``); which days rest is the holidays file's calendar
    rest_hours: str = ""
    holidays_file: Path = HOLIDAYS_FILE

    def window(self, day: date) -> str:
        """The hours people answer on ``day`` ("" for none): ``rest_hours`` on a 休息日 when set."""
        if self.rest_hours and not calendar(self.holidays_file).is_workday(day):
            return "" if self.rest_hours == "off" else self.rest_hours
        return self.hours

    def staffed(self, at: datetime) -> bool:
        """Whether people answer the queue at ``at``: within the hours of its day, or the part past
        midnight of the day before's ("20:00-08:00": a night shift ends the next morning)."""
        if not self.hours:
            return True
        local = at.astimezone(BEIJING)
        now = local.strftime("%H:%M")
        for day, before in ((local.date(), False), (local.date() - timedelta(days=1), True)):
            if window := self.window(day):
                start, end = window.split("-")
                if before:
                    if end < start and now < end:
                        return True
                elif start <= now < end if start < end else now >= start:
                    return True
        return False

    def next_open(self, at: datetime, days: int = 14) -> datetime | None:
        """When people are next in after ``at`` (outside the hours): the start of the next day's
        window that begins later (None when none does within ``days``)."""
        if not self.hours:
            return None
        local = at.astimezone(BEIJING)
        for ahead in range(days + 1):
            day = local.date() + timedelta(days=ahead)
            if window := self.window(day):
                start = datetime.combine(day, datetime.strptime(window[:5], "%H:%M").time(), BEIJING)
                if start > local:
                    return start
        return None

    def when_said(self, at: datetime) -> str:
        """When people are next in, as a citizen reads it: 今天8:30, 明天8:30, 12月1日（周一）8:30 ("": unknown)."""
        start = self.next_open(at)
        if start is None:
            return ""
        days = (start.date() - at.astimezone(BEIJING).date()).days
        day = "今天" if days == 0 else "明天" if days == 1 else f"{start.month}月{start.day}日（周{'一二三四五六日'[start.weekday()]}）"
        return f"{day}{start.hour}:{start.minute:02d}"

    def hours_said(self) -> str:
        """The hours as a citizen reads them: 每天8:30—21:00 (次日 before an end past midnight), or
        工作日8:30—21:00，周末及节假日9:00—17:00 (…暂不提供)."""

        def said(window: str) -> str:
            start, end = (f"{int(m[:2])}:{m[3:]}" for m in window.split("-"))
            return f"{start}—{'次日' if window[6:] < window[:5] else ''}{end}"

        if not self.rest_hours or self.rest_hours == self.hours:
            return f"每天{said(self.hours)}"
        rest = "暂不提供" if self.rest_hours == "off" else said(self.rest_hours)
        return f"工作日{said(self.hours)}，周末及节假日{rest}"

    @classmethod
    def from_settings(cls, settings: Any) -> HandoffRules:
        return cls(
            on_ask=settings.handoff_on_ask,
            unsure_turns=settings.handoff_unsure_turns,
            on_urgent=settings.handoff_on_urgent,
            on_angry=settings.handoff_on_angry,
            on_unsatisfied=settings.handoff_on_unsatisfied,
            repeat_turns=settings.handoff_repeat_turns,
            eta_minutes=settings.handoff_eta_minutes,
            hours=settings.handoff_hours,
            rest_hours=settings.handoff_rest_hours,
            holidays_file=settings.holidays_file,
        )


# "那个单子撤了吧，人家已经来修好了": the citizen wants a filed ticket withdrawn. The bot cannot close
# a ticket; a person checks and does it.
_WITHDRAW = re.compile(
    r"撤单|撤了吧|撤回|撤掉|不用(?:再)?(?:处理|办|管|派人|来)了|不需要(?:再)?(?:处理|办)了|"
    r"(?:已经|自己|人家)(?:都)?(?:来)?(?:修好|解决|处理好|弄好)了.{0,8}(?:不用|别|撤)"
)


_NUMBER = re.compile(r"[0-9A-Za-z-]{6,}")  # a ticket number in the words ("请撤回工单12345-20261127-000001")


def asks_to_withdraw(text: str) -> bool:
    """A short turn only (a ticket number it names not counted): a board post that asks to 撤回
    a decision is a complaint of its own."""
    compact = _NOISE.sub("", text)
    return len(_NUMBER.sub("", compact)) <= 30 and bool(_WITHDRAW.search(compact))


def asks_for_person(text: str) -> bool:
    compact = _NOISE.sub("", text)
    return any(p in compact for p in ASK_PHRASES)


def is_angry(text: str) -> bool:
    return bool(_SHOUT.search(text)) or any(w in text for w in ANGRY_WORDS)


def normalized(text: str) -> str:
    return _NOISE.sub("", text)


def same_complaint(a: str, b: str) -> bool:
    """Two messages say the same thing (copy-paste, or retyped with small changes)."""
    a, b = normalized(a), normalized(b)
    if len(a) < REPEAT_MIN_CHARS or len(b) < REPEAT_MIN_CHARS:
        return False
    return a == b or SequenceMatcher(None, a, b).ratio() >= REPEAT_SIMILARITY
