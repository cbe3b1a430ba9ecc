"""并单 in the console: the open tickets that may be the same matter as one (可能重复), so an
operator merges the repeats of a burst main or a dark street into one ticket the department
handles once, while each citizen still hears every step on their own channel.

A repeat is looked for where the ticket is: first the tickets about the same spot (its estate or
village, else its landmark, else its road and number, else its road: ``LocationInfo.place``, which
the ledger indexes; those of its first-level category too are what 工单查询 flags on every row as
疑似重复), then those whose words name its place; among the open tickets filed in the last
``SIMILAR_DAYS`` days that follow no other (merged ones are reached through their main); the same
first-level category first, then the newest.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, Field

from channels.base import WellFormedStr
from ticket_client.base import MAX_REASON, PLACE_MAX, Ticket, TicketClient, TicketQuery
from ticket_client.deadlines import DONE

SIMILAR_DAYS = 30
MAX_SIMILAR = 8  # tickets found by words only, after those at the spot
MAX_AT_SPOT = 50  # a burst's reports at the spot, listed (and merged by 全部并入本单) at once


class MergeIn(BaseModel):
    """并单 as the console and the admin API take it: the main ticket's number, and why (kept in
    the audit, never told to the citizen)."""

    into: str = Field(min_length=1, max_length=64)
    reason: WellFormedStr = Field(default="", max_length=MAX_REASON)


class GatherIn(BaseModel):
    """并入本单: the repeats to merge into this ticket at once (a burst main's twenty calls), and
    why (for the audit)."""

    tickets: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(min_length=1, max_length=MAX_AT_SPOT)
    reason: WellFormedStr = Field(default="", max_length=MAX_REASON)


class UnmergeIn(BaseModel):
    """取消并单: why, for the audit."""

    reason: WellFormedStr = Field(default="", max_length=MAX_REASON)


def place_word(t: Ticket) -> str:
    """What the same place is looked up by: its spot (``LocationInfo.place``), else the place as
    written ("" when the ticket has no place to go by)."""
    written = t.location.text.strip()
    return t.location.place() or (written if len(written) <= PLACE_MAX and " " not in written else "")


def _open_main(t: Ticket) -> bool:
    return t.status not in DONE and not t.merged_into


MAX_FOLLOWERS = 200  # the repeats of one main read with it (a burst's calls merged into one ticket)


async def followers(tickets: TicketClient, t: Ticket) -> list[Ticket]:
    """The repeats merged into ``t`` (none when ``t`` follows another): the main is where their
    citizens' 催办 and 补充 are read and counted."""
    return [] if t.merged_into else await tickets.search(TicketQuery(merged_into=t.ticket_id, limit=MAX_FOLLOWERS))


async def similar(tickets: TicketClient, t: Ticket, now: datetime) -> list[Ticket]:
    """The open tickets that may be the same matter as ``t``, most likely first: those about the
    same spot (the 疑似重复 the lists flag), then those naming its place in their words; the same
    first-level category first within each, then the newest (none for a ticket merged already)."""
    word = place_word(t)
    if not word or t.merged_into:
        return []
    since = now - timedelta(days=SIMILAR_DAYS)
    place = t.location.place()
    at_place = await tickets.search(TicketQuery(place=place, since=since, main_only=True, limit=200)) if place else []
    by_words = await tickets.search(TicketQuery(text=word, since=since, main_only=True, limit=50))
    kind = t.category[:1]
    seen = {t.ticket_id}

    def fresh(found: list[Ticket]) -> list[Ticket]:
        """The open ones not listed yet, its own category first (stable: the newest first within)."""
        kept = [x for x in found if x.ticket_id not in seen and _open_main(x)]
        seen.update(x.ticket_id for x in kept)
        return sorted(kept, key=lambda x: x.category[:1] != kind)

    return fresh(at_place)[:MAX_AT_SPOT] + fresh(by_words)[:MAX_SIMILAR]


async def repeats(tickets: TicketClient, page: list[Ticket], now: datetime) -> dict[str, int]:
    """疑似重复 of a page of tickets: for each open one (merged into none) filed in the last
    ``SIMILAR_DAYS`` days, how many other such tickets are about its spot, the same place and
    first-level category (``TicketDraft.spot``; one grouped count for the page; a ticket with none
    is left out). Both within the period, as ``TicketQuery.repeated_since`` finds them: a burst is
    days, not months."""
    since = now - timedelta(days=SIMILAR_DAYS)
    shown = [t for t in page if _open_main(t) and t.created_at >= since and t.location.place()]
    counts = await tickets.open_at([t.spot() for t in shown], since) if shown else {}
    found = {t.ticket_id: counts.get(t.spot(), 0) - 1 for t in shown}
    return {ticket_id: n for ticket_id, n in found.items() if n > 0}
