"""The bot's words for a period (HOTLINE_URGE_QUIET_HOURS in 同一工单{quiet}内催办一次即可)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.texts import period_words


@pytest.mark.parametrize(("period", "words"), [
    (timedelta(hours=24), "一天"), (timedelta(hours=48), "两天"), (timedelta(days=7), "7天"),
    (timedelta(hours=12), "12小时"), (timedelta(hours=1), "1小时"), (timedelta(minutes=30), "30分钟"),
    (timedelta(hours=36), "36小时"),
])
def test_a_period_is_said_as_a_citizen_says_it(period: timedelta, words: str) -> None:
    assert period_words(period) == words
