"""Operators' reviews of filed tickets as files ``hotline nlu evaluate`` reads: real messages
labelled by people who handle them, not in the shared data the NLU was trained on.

Every ticket an operator corrected or confirmed (更正, 改派, 审核无误: its revisions) is one row:
the citizen's title and words (phone, ID, plate numbers and e-mail addresses masked), the label as
the operator left it, and what the ticket was filed with before anyone corrected it (``nlu_*``:
the NLU's reading for a ticket the bot filed). Corrections alone over-count the NLU's mistakes (a
right reading is rarely opened); a sample an operator reviewed ticket by ticket (审核无误 or 更正)
measures it fairly.

A place is a label only where the citizen wrote it in the words of the ticket (or there is none):
one the bot asked for in another turn, or one the operator wrote out in full (属地更正 adding the
district), is no span of those words, and is left out and counted.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from nlu.pii import mask_pii
from ticket_client.base import LocationInfo, Ticket, TicketClient, TicketQuery

Task = Literal["category", "request_type", "location"]
TASKS: tuple[Task, ...] = ("category", "request_type", "location")
CATEGORY_COLUMNS = ["title", "detail", "label", "nlu_label", "review", "ticket_id"]


def filed_with(ticket: Ticket, name: str) -> Any:
    """The field as the ticket was filed: the ``before`` of the first revision that changed it."""
    for revision in ticket.revisions:
        if name in revision.before:
            return revision.before[name]
    return getattr(ticket, name)


def _review(ticket: Ticket, names: tuple[str, ...]) -> str:
    changed = any(name in r.after for r in ticket.revisions for name in names)
    return "corrected" if changed else "confirmed"


def category_row(ticket: Ticket) -> dict[str, str] | None:
    """One CSV row for ``--task category`` (its first level), or None for a ticket left unclassified."""
    if not ticket.category:
        return None
    filed = filed_with(ticket, "category")
    return {"title": mask_pii(ticket.title), "detail": mask_pii(ticket.description), "label": ticket.category[0],
            "nlu_label": filed[0] if filed else "", "review": _review(ticket, ("category",)),
            "ticket_id": ticket.ticket_id}


def request_type_row(ticket: Ticket) -> dict[str, Any] | None:
    """One JSONL object for ``--task request_type``, or None for a ticket with no request type."""
    if not ticket.request_type:
        return None
    return {"title": mask_pii(ticket.title), "text": mask_pii(ticket.description),
            "request_type": ticket.request_type, "urgent": ticket.urgent,
            "nlu_request_type": filed_with(ticket, "request_type"), "nlu_urgent": filed_with(ticket, "urgent"),
            "review": _review(ticket, ("request_type", "urgent")), "ticket_id": ticket.ticket_id}


def location_row(ticket: Ticket) -> dict[str, Any] | None:
    """One JSONL object for ``--task location``: the place as the operator left it, when it is
    written in the citizen's words or empty (no place); None when it is not."""
    text = mask_pii(ticket.description)
    place = mask_pii(ticket.location.text)
    if place and place not in text:
        return None
    filed = filed_with(ticket, "location")
    return {"text": text, "location": place,
            "nlu_location": mask_pii(filed.text if isinstance(filed, LocationInfo) else filed),
            "review": _review(ticket, ("location",)), "ticket_id": ticket.ticket_id}


@dataclass
class Written:
    """What a file holds: rows, how many were confirmed and corrected, and how many the filing
    had right (its label equal to the operator's); ``unwritten``: places left out, not being a
    span of the citizen's words."""

    rows: int = 0
    reviews: dict[str, int] = field(default_factory=lambda: {"confirmed": 0, "corrected": 0})
    agreed: int = 0
    unwritten: int = 0

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.rows if self.rows else None


async def _reviewed(client: TicketClient, query: TicketQuery) -> AsyncIterator[Ticket]:
    async for page in client.scan(query.model_copy(update={"reviewed": True})):
        for ticket in page:
            yield ticket


async def write(client: TicketClient, task: Task, out: IO[str], query: TicketQuery) -> Written:
    """Write the reviewed tickets ``query`` finds (newest first) as ``task``'s evaluation file."""
    done = Written()
    writer = csv.DictWriter(out, CATEGORY_COLUMNS) if task == "category" else None
    if writer is not None:
        writer.writeheader()
    async for ticket in _reviewed(client, query):
        if task == "location":
            row = location_row(ticket)
            done.unwritten += row is None
        else:
            row = category_row(ticket) if task == "category" else request_type_row(ticket)
        if row is None:
            continue
        if writer is not None:
            writer.writerow(row)
            agreed = row["label"] == row["nlu_label"]
        else:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            agreed = (row["location"] == row["nlu_location"] if task == "location" else
                      (row["request_type"], row["urgent"]) == (row["nlu_request_type"], row["nlu_urgent"]))
        done.rows += 1
        done.reviews[row["review"]] += 1
        done.agreed += agreed
    return done
