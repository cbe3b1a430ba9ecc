"""The gateway builds the bot with the city's settings."""

from __future__ import annotations

import pytest

from config.settings import Settings
from gateway.runtime import Runtime


@pytest.mark.parametrize(("update", "reopens"), [({}, False), ({"reopen_unsolved": True}, True)])
async def test_unsolved_reopens_tickets_only_with_the_setting(settings: Settings, update: dict[str, bool],
                                                              reopens: bool) -> None:
    runtime = Runtime(settings.model_copy(update=update))
    await runtime.start(workers=False)
    try:
        assert runtime.bot is not None and runtime.bot.reopen_unsolved is reopens
    finally:
        await runtime.stop()
