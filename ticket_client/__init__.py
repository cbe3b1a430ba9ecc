"""The ticket client: how the bot and gateway file and follow 12345 tickets.

``make_client(settings)`` picks the backend (``HOTLINE_TICKET_BACKEND``):

- ``local``: the ``LocalLedger`` in SQLite or PostgreSQL, whose statuses the admin API and the
  operator console move;
- ``open311``: ``Open311Client``, which files each ticket on a platform speaking Open311
  GeoReport v2 (exactly once, through the outbox's retries) and brings its status changes back;
  the ``LocalLedger`` stays the gateway's mirror (numbers, conversations, history, ratings) and
  the platform owns the workflow (docs/ticket_platform.md).

``migrate(url)`` brings the ledger's schema to head at start (both backends use it).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from ticket_client import deadlines
from ticket_client.base import (
    MAX_NOTE,
    RATINGS,
    STATUSES,
    TRANSITIONS,
    AssistRefused,
    Correction,
    CorrectionCount,
    CorrectionRefused,
    ExtendRefused,
    ExtensionRequest,
    ExtensionRequestRefused,
    FollowUp,
    InvalidNote,
    InvalidRating,
    InvalidTransition,
    LocationInfo,
    MergeRefused,
    NoteRefused,
    NotesManagedByPlatform,
    PlatformMisconfigured,
    PlatformRejected,
    PlatformUnavailable,
    Rating,
    Rejudged,
    Revision,
    Status,
    StatusChange,
    StatusManagedByPlatform,
    Ticket,
    TicketClient,
    TicketDraft,
    TicketError,
    TicketNotFound,
    TicketQuery,
    TicketRef,
    TimeLimit,
    UnknownStatus,
    Urged,
    WithdrawRefused,
)
from ticket_client.db import migrate, upgrade_database
from ticket_client.ledger import Limits, LocalLedger

if TYPE_CHECKING:
    from config.settings import Settings

__all__ = [
    "Correction",
    "CorrectionCount",
    "CorrectionRefused",
    "ExtendRefused",
    "ExtensionRequest",
    "ExtensionRequestRefused",
    "MergeRefused",
    "FollowUp",
    "MAX_NOTE",
    "RATINGS",
    "STATUSES",
    "TRANSITIONS",
    "AssistRefused",
    "InvalidNote",
    "InvalidRating",
    "InvalidTransition",
    "Limits",
    "LocalLedger",
    "LocationInfo",
    "NoteRefused",
    "NotesManagedByPlatform",
    "PlatformMisconfigured",
    "PlatformRejected",
    "PlatformUnavailable",
    "Rejudged",
    "Rating",
    "Revision",
    "Status",
    "StatusChange",
    "Summary",
    "StatusManagedByPlatform",
    "Ticket",
    "TicketClient",
    "TicketDraft",
    "TicketError",
    "TicketNotFound",
    "TicketQuery",
    "TicketRef",
    "TimeLimit",
    "UnknownStatus",
    "Urged",
    "WithdrawRefused",
    "make_client",
    "migrate",
    "upgrade_database",
]


def make_client(settings: Settings) -> TicketClient:
    """The configured backend; the caller owns it (``await client.close()`` at shutdown).

    Connects to nothing yet; ValueError naming the setting when the backend's settings are wrong.
    """
    ledger = LocalLedger(settings.effective_database_url, prefix=settings.ticket_prefix,
                         urge_quiet=timedelta(hours=settings.urge_quiet_hours),
                         limits=Limits(due=lambda ticket: deadlines.due_at(ticket, settings),  # 超期办结
                                       respond=lambda ticket: deadlines.respond_by(ticket, settings)))  # 超时签收
    if settings.ticket_backend == "local":
        return ledger
    if settings.ticket_backend == "open311":
        from ticket_client.open311 import Open311Client, Open311Config

        config = Open311Config.from_settings(settings)
        return Open311Client(ledger, config)
    raise ValueError(
        f"unknown ticket backend HOTLINE_TICKET_BACKEND={settings.ticket_backend!r}; known: local, open311"
    )
