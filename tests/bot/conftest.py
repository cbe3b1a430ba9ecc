"""Fixtures of the dialogue tests: a real ledger (SQLite) for the bot to file into."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ticket_client import LocalLedger, migrate


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[LocalLedger]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.sqlite3'}"
    await migrate(url)
    client = LocalLedger(url)
    yield client
    await client.close()
