"""The ticket client: how the bot and gateway file and follow 12345 tickets.

``make_client(settings)`` picks the backend (only ``local`` today: the ``LocalLedger`` in
SQLite or PostgreSQL); ``migrate(url)`` brings the ledger's schema to head at start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ticket_client.base import (
    RATINGS,
    STATUSES,
    TRANSITIONS,
    InvalidRating,
    InvalidTransition,
    LocationInfo,
    PlatformUnavailable,
    Rating,
    Status,
    StatusChange,
    Ticket,
    TicketClient,
    TicketDraft,
    TicketError,
    TicketNotFound,
    TicketRef,
    UnknownStatus,
)
from ticket_client.db import migrate, upgrade_database
from ticket_client.ledger import LocalLedger

if TYPE_CHECKING:
    from config.settings import Settings

__all__ = [
    "RATINGS",
    "STATUSES",
    "TRANSITIONS",
    "InvalidRating",
    "InvalidTransition",
    "LocalLedger",
    "LocationInfo",
    "PlatformUnavailable",
    "Rating",
    "Status",
    "StatusChange",
    "Ticket",
    "TicketClient",
    "TicketDraft",
    "TicketError",
    "TicketNotFound",
    "TicketRef",
    "UnknownStatus",
    "make_client",
    "migrate",
    "upgrade_database",
]


def make_client(settings: Settings) -> TicketClient:
    """The configured backend; the caller owns it (``await client.close()`` at shutdown)."""
    if settings.ticket_backend == "local":
        return LocalLedger(settings.effective_database_url, prefix=settings.ticket_prefix)
    raise ValueError(f"unknown ticket backend {settings.ticket_backend!r}; known: local")
