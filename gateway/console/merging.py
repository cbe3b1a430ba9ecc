"""并单 in the console: the open tickets that may be the same matter as one (可能重复), so an
operator merges the repeats of a burst main or a dark street into one ticket the department
handles once, while each citizen still hears every step on their own channel.

A repeat is looked for where the ticket is: its estate or village, else its landmark, else its
road and number, else its road, else the place as written, among the open tickets filed in the
last ``SIMILAR_DAYS`` days that follow no other (merged ones are reached through their main);
the same first-level category first, then the newest.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from channels.base import WellFormedStr
from ticket_client.base import MAX_REASON, Ticket, TicketClient, TicketQuery
from ticket_client.deadlines import DONE

SIMILAR_DAYS = 30
MAX_SIMILAR = 8
PLACE_WORD_MAX = 40  # a place written longer than this is no word to look up by


class MergeIn(BaseModel):
    """并单 as the console and the admin API take it: the main ticket's number, and why (kept in
    the audit, never told to the citizen)."""

    into: str = Field(min_length=1, max_length=64)
    reason: WellFormedStr = Field(default="", max_length=MAX_REASON)


class UnmergeIn(BaseModel):
    """取消并单: why, for the audit."""

    reason: WellFormedStr = Field(default="", max_length=MAX_REASON)


def place_word(t: Ticket) -> str:
    """What the same place is looked up by ("" when the ticket has no place to go by)."""
    parts = t.location.parts
    for word in (parts.get("community", ""), parts.get("landmark", ""),
                 parts.get("road", "") + parts.get("number", "") if parts.get("number") else "",
                 parts.get("road", ""), t.location.text):
        word = word.strip()
        if word and len(word) <= PLACE_WORD_MAX and " " not in word:
            return word
    return ""


async def similar(tickets: TicketClient, t: Ticket, now: datetime) -> list[Ticket]:
    """The open tickets at ``t``'s place that may be the same matter, most likely first (none
    for a ticket merged already)."""
    word = place_word(t)
    if not word or t.merged_into:
        return []
    found = await tickets.search(TicketQuery(text=word, since=now - timedelta(days=SIMILAR_DAYS),
                                             main_only=True, limit=50))
    kind = t.category[:1]
    open_ones = [x for x in found if x.ticket_id != t.ticket_id and x.status not in DONE]
    open_ones.sort(key=lambda x: x.category[:1] != kind)  # stable: newest first within each
    return open_ones[:MAX_SIMILAR]
