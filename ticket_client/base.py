"""The ticket client's contract and types: the bot and gateway speak only these.

``file`` is idempotent by ``idempotency_key``: filing the same draft twice returns the same ticket.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, Field

Status = Literal["received", "accepted", "processing", "resolved", "closed", "returned", "reopened"]
STATUSES: tuple[str, ...] = ("received", "accepted", "processing", "resolved", "closed", "returned", "reopened")

# Which status may follow which: the platform's workflow, enforced by every backend.
TRANSITIONS: dict[str, frozenset[str]] = {
    "received": frozenset({"accepted", "returned", "closed"}),
    "accepted": frozenset({"processing", "returned", "resolved"}),
    "processing": frozenset({"resolved", "returned"}),
    "returned": frozenset({"accepted", "closed"}),
    "resolved": frozenset({"closed", "reopened"}),
    "reopened": frozenset({"accepted", "processing", "resolved"}),
    "closed": frozenset({"reopened"}),
}

Rating = Literal["满意", "基本满意", "不满意"]
RATINGS: tuple[str, ...] = ("满意", "基本满意", "不满意")


class LocationInfo(BaseModel):
    text: str = ""
    parts: dict[str, str] = Field(default_factory=dict)
    lat: float | None = None
    lng: float | None = None


class TicketDraft(BaseModel):
    """What the bot collected; becomes a ticket when filed."""

    channel: str
    conversation_key: str
    contact: str = ""
    title: str = ""
    description: str
    category: list[str] = Field(default_factory=list)  # first/second/third level
    request_type: str = ""
    urgent: bool = False
    location: LocationInfo = Field(default_factory=LocationInfo)
    departments: list[str] = Field(default_factory=list)
    attachments: list[str] = Field(default_factory=list)


class StatusChange(BaseModel):
    seq: int  # monotonically increasing cursor across all tickets of a backend
    ticket_id: str
    conversation_key: str
    channel: str
    status: str
    note: str = ""
    at: datetime


class TicketRef(BaseModel):
    ticket_id: str
    status: str
    created: bool = True  # False when the idempotency key had already filed this ticket


class Ticket(TicketDraft):
    ticket_id: str
    status: str
    created_at: datetime
    updated_at: datetime
    history: list[StatusChange] = Field(default_factory=list)
    rating: str | None = None
    rating_comment: str = ""


class TicketError(Exception):
    """Base of ticket-client errors."""


class TicketNotFound(TicketError):
    pass


class InvalidTransition(TicketError):
    pass


class UnknownStatus(InvalidTransition, ValueError):
    """The status name is not one of ``STATUSES`` (a caller bug, not a workflow refusal)."""


class InvalidRating(TicketError, ValueError):
    """The rating is not one of ``RATINGS``."""


class PlatformUnavailable(TicketError):
    """The platform (or ledger database) cannot be reached: retry later."""


class TicketClient(Protocol):
    async def file(self, draft: TicketDraft, idempotency_key: str) -> TicketRef: ...

    async def get(self, ticket_id: str) -> Ticket: ...

    async def list_for(self, conversation_key: str, limit: int = 10) -> list[Ticket]: ...

    async def changes_since(self, cursor: int, limit: int = 100) -> list[StatusChange]: ...

    async def set_status(self, ticket_id: str, status: str, note: str = "") -> Ticket: ...

    async def rate(self, ticket_id: str, rating: str, comment: str = "") -> Ticket: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
