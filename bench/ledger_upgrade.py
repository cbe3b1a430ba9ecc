"""How long the ledger's upgrade from migration 0008 to head takes on a ledger of a city's size.

    python bench/ledger_upgrade.py [--tickets 1330000] [--database-url URL]

Makes a ledger at migration 0008 (a SQLite file in a temporary folder, or a fresh schema of the
PostgreSQL database at URL, dropped afterwards), fills it with N tickets over the last year, each
at one of N/4 made-up estates, those older than a month finished (受理, 派单, 办结 and 归档 in
their history, one in eight after 20 days), then times the upgrade to head: 0009 adds
``tickets.place`` and reads every ticket's stored place once into it (疑似重复); 0012 reads each
ticket's history for when it was first taken on (响应) and its 办结, and judges both (按期办结,
超时签收). The gateway runs them at its first start after the update,
so this is how much longer that start takes. The steps are timed apart.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from ticket_client.db import sync_url, upgrade_database  # noqa: E402

BATCH = 10_000
INSERT = text(
    "INSERT INTO tickets (ticket_id, idempotency_key, channel, conversation_key, contact, title, description, "
    "category, request_type, urgent, location, departments, attachments, status, rating, rating_comment, "
    "created_at, updated_at) VALUES (:id, :id, 'web', 'web:bench', '', '', '路灯坏了', '[\"城乡建设\"]', '', false, "
    ":location, '[]', '[]', :status, NULL, '', :at, :at)"
)
STEP = text("INSERT INTO status_history (ticket_pk, status, note, at, kind) VALUES (:pk, :status, '', :at, 'status')")


def measure(database_url: str, n: int) -> list[float]:
    """Seconds the upgrades 0008 → 0011 and 0011 → 0012 took for ``n`` tickets."""
    upgrade_database(database_url, "0008")
    engine = create_engine(sync_url(database_url))
    rng = random.Random(1)
    start = datetime.now(UTC) - timedelta(days=365)
    naive = database_url.startswith("sqlite")  # the ledger stores naive UTC there
    month = datetime.now(UTC) - timedelta(days=30)

    def stored(at: datetime) -> datetime:
        return at.replace(tzinfo=None) if naive else at

    with engine.begin() as conn:
        for first in range(0, n, BATCH):
            rows, steps = [], []
            for i in range(first, min(n, first + BATCH)):
                at = start + timedelta(days=365) * i / n
                estate = f"小区{rng.randrange(max(n // 4, 1))}"
                location = {"text": f"联丰路{estate}", "parts": {"road": "联丰路", "community": estate}}
                done = at < month
                rows.append({"id": f"12345-bench-{i:07d}", "location": json.dumps(location, ensure_ascii=False),
                             "at": stored(at), "status": "closed" if done else "received"})
                took = timedelta(days=rng.uniform(20, 30) if i % 8 == 0 else rng.uniform(0.5, 12))
                steps += [{"pk": i + 1, "status": status, "at": stored(at + after)} for status, after in (
                    ("received", timedelta()), ("accepted", timedelta(hours=1)), ("resolved", took),
                    ("closed", took + timedelta(days=3)))[:4 if done else 1]]
            conn.execute(INSERT, rows)
            conn.execute(STEP, steps)
            print(f"\r  filled {min(n, first + BATCH):,} / {n:,}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    engine.dispose()
    took = []
    for target in ("0011", "0012"):
        began = time.perf_counter()
        upgrade_database(database_url, target)
        took.append(time.perf_counter() - began)
    return took


def said(took: list[float]) -> str:
    steps = ("0008 → 0011", "0011 → 0012")
    return ", ".join(f"{step} in {s:.1f} s" for step, s in zip(steps, took, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1_330_000, help="tickets in the ledger (default 1,330,000)")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (a fresh schema is made and dropped); "
                                                           "without it, a SQLite file")
    args = parser.parse_args()
    if not args.database_url:
        with tempfile.TemporaryDirectory() as folder:
            took = measure(f"sqlite+aiosqlite:///{Path(folder) / 'ledger.sqlite3'}", args.tickets)
        print(f"{args.tickets:,} tickets (SQLite): {said(took)}")
        return
    schema = f"bench_{uuid4().hex[:12]}"
    admin = create_engine(sync_url(args.database_url))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(args.database_url).update_query_dict({"options": f"-csearch_path={schema}"})
        took = measure(url.render_as_string(hide_password=False), args.tickets)
        print(f"{args.tickets:,} tickets (PostgreSQL): {said(took)}")
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
