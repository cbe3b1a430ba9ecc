"""Fixtures shared by the WeChat tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from channels.wechat.fakeapi import FakeWechatApi
from tests.channels.test_wechat import ACCOUNTS, FIXTURES


@pytest.fixture
async def fake() -> AsyncIterator[FakeWechatApi]:
    """The local fake WeChat API on loopback, answering with the official response shapes."""
    api = FakeWechatApi(fixtures=FIXTURES, secrets={a.appid: a.secret for a in ACCOUNTS.values()})
    await api.start()
    yield api
    await api.stop()
