"""A conversation's dialogue state; the gateway keeps it in Redis (one JSON field per conversation)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

Step = Literal["idle", "awaiting_location", "confirming"]
Mode = Literal["bot", "waiting", "operator", "closed"]
MAX_QUEUED = 5  # matters kept while one is drafted; more are declined (the citizen is told)


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
    # new matters raised while another was being drafted ("另外想问问…"), oldest first: each is
    # taken up as soon as the one before it is filed or cancelled, so the citizen does not have to
    # say it again (at most MAX_QUEUED)
    queued: list[str] = Field(default_factory=list)

    @field_validator("queued", mode="before")
    @classmethod
    def _one_matter_as_a_list(cls, value: object) -> object:
        """States saved before round 14 kept one matter, as a string."""
        if isinstance(value, str):
            return [value] if value else []
        return value
