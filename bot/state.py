"""A conversation's dialogue state; the gateway keeps it in Redis (one JSON field per conversation)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from ticket_client.base import LocationInfo

Step = Literal["idle", "awaiting_location", "confirming"]
Mode = Literal["bot", "waiting", "operator", "closed"]
PlaceOffer = Literal["", "offered", "declined"]
MAX_QUEUED = 5  # matters kept while one is drafted; more are declined (the citizen is told)
MAX_ATTACHMENTS = 9  # photos and other media kept for one ticket (a WeChat post holds nine)
PLACE_MEMORY = timedelta(hours=24)  # how long the last filed ticket's place is offered for the next


class Place(BaseModel):
    """Where the citizen's last filed ticket was: offered when the next matter names no place
    ("还有个事，我们小区楼下…"), so they need not type the address again."""

    text: str
    parts: dict[str, str] = Field(default_factory=dict)
    lat: float | None = None
    lng: float | None = None
    at: datetime


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
    no_place: bool = False  # the citizen said it concerns no particular place (a policy question)
    place_offer: PlaceOffer = ""  # "where?" asked as "the same place as last time?", and the answer


class Answered(BaseModel):
    """A question the bot answered from the knowledge base (知识库), until the citizen says whether
    that solved it: "没有解决" files the question as a ticket, without typing it again."""

    entry: str  # the knowledge base entry's id
    question: str
    at: datetime


class Supplement(BaseModel):
    """补充 to a filed ticket, half done: the citizen announced one ("我想补充一下", ``text`` still
    empty) or said it with several open tickets and was asked which (``text`` kept meanwhile)."""

    text: str = ""
    at: datetime


class Withdrawing(BaseModel):
    """撤单 asked for and offered: the ticket not yet dispatched the bot asked the citizen to confirm
    withdrawing (确认撤回), with the words they asked in (kept on the ticket as its reason)."""

    ticket_id: str
    words: str = ""
    at: datetime


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
    last_place: Place | None = None
    # media sent with no draft open, for the ticket the citizen describes next
    pending_attachments: list[str] = Field(default_factory=list)
    pending_location: Place | None = None  # a location shared before the problem was described
    # words too short to file ("停水了"), joined to what the citizen says next
    pending_text: str = ""
    pending_text_at: datetime | None = None
    answered: Answered | None = None  # the last answer from the knowledge base, awaiting 已解决/没有解决
    supplement: Supplement | None = None  # a 补充 announced or awaiting the ticket it is for
    withdrawing: Withdrawing | None = None  # a 撤单 offered, awaiting 确认撤回 / 不撤回

    def afresh(self, place: Place | None = None) -> ConversationState:
        """The state once a draft is filed or dropped: what outlives one ticket stays (the
        greeting, the last filed place, or ``place`` if a ticket was just filed there)."""
        return ConversationState(greeted=self.greeted, last_place=place or self.last_place)

    def after_filing(self, where: LocationInfo, at: datetime) -> ConversationState:
        """Afresh once a ticket is filed (by the bot or an operator): its place is the one offered
        to the citizen's next matter."""
        if not where.text:
            return self.afresh()
        return self.afresh(Place(text=where.text, parts=where.parts, lat=where.lat, lng=where.lng, at=at))

    def place_to_offer(self, now: datetime) -> Place | None:
        place = self.last_place
        if place is None or not place.text or abs(now - place.at) > PLACE_MEMORY:
            return None
        return place

    @field_validator("queued", mode="before")
    @classmethod
    def _one_matter_as_a_list(cls, value: object) -> object:
        """States saved before round 14 kept one matter, as a string."""
        if isinstance(value, str):
            return [value] if value else []
        return value
