"""What the console offers an operator correcting a ticket (更正, 改派): the categories to choose
from and the departments to send it to, with the department map's suggestion for a category.

The categories are the official taxonomy's paths (一级, 一级/二级, 一级/二级/三级) as the builtin
NLU's model holds them, with the department map's own keys (a city's additions); the departments
are every unit ``config/departments.yml`` names and the offices of the districts and towns in
``config/gazetteer.yml`` (what its 属地 placeholders become). Both are suggestions: an operator may
type a unit neither file knows (a new 专班).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, Field

from channels.base import WellFormedStr
from gateway.errors import BadInput
from nlu import REQUEST_TYPES
from nlu.departments import DepartmentMap
from nlu.location import GAZETTEER_PATH, load_gazetteer, read_place
from ticket_client.base import CORRECTED_FIELDS, MAX_REASON, Correction

Name = Annotated[WellFormedStr, Field(max_length=40)]  # a level of a category, or a unit's name


class CorrectIn(BaseModel):
    """更正 / 改派 / 审核无误 as the console and the admin API take it: a field left out stays as
    it is; nothing changed is a confirmation."""

    category: list[Name] | None = Field(default=None, max_length=3)
    request_type: str | None = None
    urgent: bool | None = None
    location: WellFormedStr | None = Field(default=None, max_length=200)  # 属地更正: the place as written
    departments: list[Name] | None = Field(default=None, max_length=6)
    reason: WellFormedStr = Field(default="", max_length=MAX_REASON)

    async def correction(self, by: str) -> Correction:
        """The ticket client's Correction by ``by``, a place written anew read into its parts (so
        工单查询 counts it with the tickets about the same estate or road: 疑似重复); 400 for a
        request type that is none of the six."""
        if self.request_type is not None and self.request_type not in ("", *REQUEST_TYPES):
            raise BadInput(f"未知的诉求类型“{self.request_type}”（可选：{'、'.join(REQUEST_TYPES)}）")
        parts = await place_parts(self.location) if self.location else {}
        return Correction(by=by, location_parts=parts, **self.model_dump(include={*CORRECTED_FIELDS, "reason"}))


async def place_parts(written: str) -> dict[str, str]:
    """A place an operator wrote (属地更正, a ticket filed from the console) read into its parts
    (district, road, estate, …), so it counts at its spot as the bot's readings do (疑似重复).
    In a thread: the reader's first use builds it (about 0.4 s)."""
    return (await asyncio.to_thread(read_place, written)).parts()


class Routing:
    def __init__(self, departments: DepartmentMap, taxonomy: list[tuple[str, str, str]],
                 places: Sequence[str] = ()) -> None:
        self.departments = departments
        paths: dict[str, None] = {}
        for row in taxonomy:
            levels = [level for level in row if level]
            for n in range(1, len(levels) + 1):
                paths["/".join(levels[:n])] = None
        for key in departments.rules:
            paths.setdefault(key, None)
        self.categories = list(paths)
        units = [departments.default.primary, *departments.default.co_handlers]
        for rule in departments.rules.values():
            units += [rule.primary, *rule.co_handlers]
        for extra in departments.urgent.values():
            units += extra
        # the offices of the city's own districts and towns (gazetteer): what 属地 units become
        units += [departments.office(name) for name in places]
        self.units = sorted({u for u in units if u and u not in departments.local})

    @classmethod
    def load(cls, settings: Any) -> Routing:
        """The taxonomy of the builtin NLU's model artifact (read without loading the model: the
        web process may have none loaded), and ``config/departments.yml``. Imported here, on the
        first 更正: the web process otherwise never imports the builtin backend's modules. The
        gazetteer's districts and towns name the offices 属地 units become."""
        from nlu.builtin import artifact_taxonomy

        gazetteer = load_gazetteer(GAZETTEER_PATH)
        places = [str(n) for level in ("districts", "towns") for n in gazetteer.get(level) or []]
        return cls(DepartmentMap.shipped(), artifact_taxonomy(settings), places)

    def suggest(self, category: list[str], parts: Mapping[str, str] | None = None) -> list[str]:
        """主办 then 协办 for ``category`` by the department map (its default when nothing fits),
        its 属地 units the offices of the place read as ``parts`` (属地街道办事处 → 洞井街道办事处)."""
        found = self.departments.suggest(category)
        return self.departments.localize([d for d in [found.primary, *found.co_handlers] if d], parts or {})
