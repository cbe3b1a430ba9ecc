"""How fast the console's 导出 writes a city's tickets out as CSV, and in how much memory.

    python bench/ticket_export.py [--tickets 200000] [--database-url URL]

Fills a new ledger the way bench/ticket_search.py does (N tickets over the last year, real
titles), then writes the export of the last 30 days and of the whole year through the same code
as ``GET /api/console/tickets.csv`` (``LocalLedger.scan`` pages into ``gateway.console.export``),
throwing the bytes away. Prints, per export, the rows, the megabytes, the time to the first page
(what a supervisor waits before the download starts), the whole time (each page's 疑似重复
counted as the console does; the last row writes the month without, for what that costs), rows
per second, and how
far the process's resident memory rose above where it was before the export: it should stay flat,
whatever the rows. A month of the source city's 1.33 million a year is about 110,000 rows.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ticket_search import fill, ledger_database  # noqa: E402

from config.settings import Settings  # noqa: E402
from gateway.console import export, merging  # noqa: E402
from ticket_client.base import TicketQuery  # noqa: E402
from ticket_client.ledger import LocalLedger  # noqa: E402


def rss_mb() -> float:
    """This process's resident memory now (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def write_out(ledger: LocalLedger, query: TicketQuery, settings: Settings, repeats: bool = True) -> None:
    now = datetime.now(UTC)
    base = peak = rss_mb()
    began = time.perf_counter()
    pages = ledger.scan(query, export.PAGE)
    first = await anext(pages, [])
    to_first = time.perf_counter() - began
    tally, size = export.Tally(), 0
    async for chunk in export.lines(first, pages, settings, {}, now, tally,
                                    (lambda page: merging.repeats(ledger, page, now)) if repeats else None):
        size += len(chunk.encode())
        peak = max(peak, rss_mb())
    took = time.perf_counter() - began
    print(f"{tally.rows:>9,} {size / 2**20:8.1f} {to_first * 1000:12.0f} {took:8.1f} "
          f"{tally.rows / took:9,.0f} {peak - base:11.1f}")


async def measure(database_url: str) -> None:
    settings = Settings()
    ledger = LocalLedger(database_url)
    try:
        print(f"{'export':14} {'rows':>9} {'MB':>8} {'first ms':>12} {'s':>8} {'rows/s':>9} {'+RSS MB':>11}")
        month = TicketQuery(since=datetime.now(UTC) - timedelta(days=30))
        for name, query, repeats in (("last 30 days", month, True), ("whole year", TicketQuery(), True),
                                     ("30 days, no 疑似重复", month, False)):  # what that column costs
            print(f"{name:14}", end=" ", flush=True)
            await write_out(ledger, query, settings, repeats)
    finally:
        await ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=200_000, help="tickets in the ledger (default 200,000)")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (a fresh schema is made and dropped); "
                        "default: a SQLite file in a temporary folder")
    args = parser.parse_args()
    with ledger_database(args.database_url) as database_url:
        began = time.perf_counter()
        fill(database_url, args.tickets)
        print(f"{args.tickets:,} tickets ({'PostgreSQL' if args.database_url else 'SQLite'}) filled in "
              f"{time.perf_counter() - began:.0f} s")
        asyncio.run(measure(database_url))


if __name__ == "__main__":
    main()
