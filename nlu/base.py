"""The NLU contract: ``parse(text, context) -> Parse``.

``intent``, ``intent_ranking`` and ``entities`` have the shape of Rasa's ``/model/parse`` so a Rasa
server can stand in; the other fields are what a 12345 ticket needs.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, Field

INTENTS = (
    "new_request",  # describes a problem / request
    "add_info",  # adds detail to the request being drafted
    "query_progress",  # 查询 ticket progress; entity ticket_id
    "ask_human",  # 转人工
    "greet",
    "thanks_bye",
    "affirm",  # 是 / 确认
    "deny",  # 不是 / 不对
    "rate",  # satisfaction rating; entity rating = 满意/基本满意/不满意
)

REQUEST_TYPES = ("投诉", "举报", "求助", "咨询", "建议", "表扬")


class Intent(BaseModel):
    name: str
    confidence: float


class Entity(BaseModel):
    entity: str
    value: str
    start: int
    end: int
    confidence: float = 1.0


class Category(BaseModel):
    level1: str = ""
    level2: str = ""
    level3: str = ""
    confidence: float = 0.0
    ranking: list[tuple[str, float]] = Field(default_factory=list)
    low_confidence: bool = True

    def path(self) -> list[str]:
        return [x for x in (self.level1, self.level2, self.level3) if x]


class Location(BaseModel):
    text: str = ""  # the span as written
    start: int = -1
    end: int = -1
    province: str = ""
    city: str = ""
    district: str = ""
    town: str = ""  # 街道 / 镇 / 乡
    road: str = ""
    number: str = ""
    community: str = ""  # 小区 / 村 / 社区
    landmark: str = ""
    detail: str = ""  # 栋 / 单元 / 室

    def parts(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump(exclude={"text", "start", "end"}).items() if v}

    @property
    def found(self) -> bool:
        return bool(self.text)


class Departments(BaseModel):
    primary: str = ""
    co_handlers: list[str] = Field(default_factory=list)


class Parse(BaseModel):
    text: str
    intent: Intent
    intent_ranking: list[Intent] = Field(default_factory=list)
    entities: list[Entity] = Field(default_factory=list)
    category: Category = Field(default_factory=Category)
    request_type: str = ""
    request_type_confidence: float = 0.0
    urgency: bool = False
    urgency_reason: str = ""
    # "rules": a named danger (燃气, 坍塌...); "model": the learned model's suspicion (疑似紧急), which
    # flags the ticket but is wrong more often than right, so the bot does not hand over for it
    urgency_source: str = ""
    location: Location = Field(default_factory=Location)
    subject: str = ""
    departments: Departments = Field(default_factory=Departments)

    def entity(self, name: str) -> str | None:
        for ent in self.entities:
            if ent.entity == name:
                return ent.value
        return None


class NluBackend(Protocol):
    name: str

    def parse(self, text: str, context: dict[str, Any] | None = None) -> Parse: ...
