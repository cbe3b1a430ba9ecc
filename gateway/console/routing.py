"""What the console offers an operator correcting a ticket (更正, 改派): the categories to choose
from and the departments to send it to, with the department map's suggestion for a category.

The categories are the official taxonomy's paths (一级, 一级/二级, 一级/二级/三级) as the builtin
NLU's model holds them, with the department map's own keys (a city's additions); the departments
are every unit ``config/departments.yml`` names. Both are suggestions: an operator may type a unit
the file does not know (a new 专班, a district office).
"""

from __future__ import annotations

from typing import Any

from nlu.builtin import artifact_taxonomy
from nlu.departments import DepartmentMap


class Routing:
    def __init__(self, departments: DepartmentMap, taxonomy: list[tuple[str, str, str]]) -> None:
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
        self.units = sorted({u for u in units if u})

    @classmethod
    def load(cls, settings: Any) -> Routing:
        """The taxonomy of the builtin NLU's model artifact (read without loading the model: the
        web process may have none loaded), and ``config/departments.yml``."""
        return cls(DepartmentMap.load(), artifact_taxonomy(settings))

    def suggest(self, category: list[str]) -> list[str]:
        """主办 then 协办 for ``category`` by the department map (its default when nothing fits)."""
        found = self.departments.suggest(category)
        return [d for d in [found.primary, *found.co_handlers] if d]
