"""A conversation's dialogue state; the gateway keeps it in Redis (one JSON field per conversation)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Step = Literal["idle", "awaiting_location", "confirming"]
Mode = Literal["bot", "waiting", "operator", "closed"]


class Draft(BaseModel):
    """The ticket being collected over several turns."""

    description: str
    subject: str = ""
    location_text: str = ""
    location_parts: dict[str, str] = Field(default_factory=dict)
    lat: float | None = None
    lng: float | None = None
    category: list[str] = Field(default_factory=list)
    category_confidence: float = 0.0
    category_confident: bool = False
    request_type: str = ""
    urgent: bool = False
    departments: list[str] = Field(default_factory=list)
    contact: str = ""
    attachments: list[str] = Field(default_factory=list)


class ConversationState(BaseModel):
    step: Step = "idle"
    draft: Draft | None = None
    greeted: bool = False
    unsure_streak: int = 0  # NLU low-confidence turns in a row (handoff trigger)
    last_text: str = ""  # the citizen's previous message, to notice the same complaint again
    repeat_streak: int = 1  # how many times in a row the citizen has sent that message
    # a new matter raised while another was being drafted ("另外想问问…"): taken up as soon as that
    # one is filed or cancelled, so the citizen does not have to say it again
    queued: str = ""
