"""Category path → suggested primary department and co-handlers (config/departments.yml), and the
属地 units among them settled by the ticket's place (属地派单)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from .base import Departments

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "config" / "departments.yml"
_ESTATE_SUFFIX = re.compile(r"(?:小区|社区)$")
LEVELS = ("town", "district")  # what a 属地 placeholder names: the street office / township, or the district


def _bare(name: str) -> str:
    """An estate's name without 小区 / 社区 (米兰春天小区 and 米兰春天 are one estate)."""
    bare = _ESTATE_SUFFIX.sub("", name.strip())
    return bare if len(bare) >= 2 else name.strip()


class DepartmentMap:
    def __init__(self, data: dict[str, Any] | None = None, towns_of: Mapping[str, str] | None = None):
        """``data``: departments.yml's content; ``towns_of``: the street office or township each
        estate, village or landmark belongs to (the gazetteer's ``towns_of``), for a place that
        names no town."""
        data = data or {}
        d = data.get("default") or {}
        self.default = Departments(
            primary=d.get("primary", "12345热线服务中心"), co_handlers=d.get("co_handlers", [])
        )
        self.rules: dict[str, Departments] = {
            k: Departments(primary=v.get("primary", ""), co_handlers=list(v.get("co_handlers") or []))
            for k, v in (data.get("rules") or {}).items()
        }
        self.urgent: dict[str, list[str]] = dict(data.get("urgent_co_handlers") or {})
        local = {str(k): str(v) for k, v in (data.get("local_units") or {}).items()}
        if wrong := {k: v for k, v in local.items() if v not in LEVELS}:
            raise ValueError(f"local_units: {wrong} (each placeholder names one of {', '.join(LEVELS)})")
        self.local = local  # placeholder unit → the level of the place whose office it becomes
        self.offices = {str(k): str(v) for k, v in (data.get("offices") or {}).items()}
        self.towns_of = {_bare(str(k)): str(v) for k, v in (towns_of or {}).items() if v}

    @classmethod
    def load(cls, path: Path | None = None, towns_of: Mapping[str, str] | None = None) -> DepartmentMap:
        import yaml

        p = Path(path or DEFAULT_PATH)
        if not p.exists():
            return cls(towns_of=towns_of)
        return cls(yaml.safe_load(p.read_text(encoding="utf-8")) or {}, towns_of)

    @staticmethod
    @cache
    def shipped() -> DepartmentMap:
        """``config/departments.yml`` read once per process (the bot and the console share it),
        with ``config/gazetteer.yml``'s ``towns_of``."""
        from .location import GAZETTEER_PATH, load_gazetteer

        towns_of = load_gazetteer(GAZETTEER_PATH).get("towns_of")
        return DepartmentMap.load(towns_of=towns_of if isinstance(towns_of, dict) else None)

    def suggest(self, path: list[str], urgency_kind: str = "") -> Departments:
        found = self.default
        for n in range(len(path), 0, -1):
            key = "/".join(path[:n])
            if key in self.rules:
                found = self.rules[key]
                break
        co = [c for c in found.co_handlers if c != found.primary]
        for extra in self.urgent.get(urgency_kind, []):
            if extra not in co and extra != found.primary:
                co.append(extra)
        return Departments(primary=found.primary, co_handlers=co)

    def office(self, place: str) -> str:
        """The office that governs ``place``, a street office, township or district as a place reads
        it: the file's ``offices`` name it if they list it (a development zone's 管委会), else a
        街道 has a 办事处 and a 镇, 乡 or 区/县 a 人民政府. A name that already is an office stays."""
        if place in self.offices:
            return self.offices[place]
        if place.endswith(("办事处", "政府", "管委会", "委员会")):
            return place
        return place + ("办事处" if place.endswith("街道") else "人民政府")

    def town(self, parts: Mapping[str, str]) -> str:
        """The street office or township of a place: the one it names, else the one its estate,
        village or landmark belongs to (``towns_of``; 米兰春天小区 is looked up as 米兰春天)."""
        named = [parts.get("community", ""), parts.get("landmark", "")]
        return parts.get("town") or next((self.towns_of[_bare(n)] for n in named if n and _bare(n) in self.towns_of), "")

    def localize(self, units: list[str], parts: Mapping[str, str]) -> list[str]:
        """``units`` with each 属地 placeholder (属地街道办事处, 属地政府 …) made the office of the
        place ``parts`` read (district, town …): a town's placeholder falls back to the district's
        government when the place names no town (nor an estate whose town is known); one the
        place cannot settle stays for the operator. Order kept, a unit named twice once."""
        where = {**parts, "town": self.town(parts)}
        out: list[str] = []
        for unit in units:
            level = self.local.get(unit)
            if level is not None:
                found = [p for p in LEVELS[LEVELS.index(level):] if where.get(p)]
                unit = self.office(where[found[0]]) if found else unit
            if unit and unit not in out:
                out.append(unit)
        return out
