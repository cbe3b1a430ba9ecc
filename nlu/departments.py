"""Category path → suggested primary department and co-handlers (config/departments.yml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import Departments

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "config" / "departments.yml"


class DepartmentMap:
    def __init__(self, data: dict[str, Any] | None = None):
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

    @classmethod
    def load(cls, path: Path | None = None) -> DepartmentMap:
        import yaml

        p = Path(path or DEFAULT_PATH)
        if not p.exists():
            return cls()
        return cls(yaml.safe_load(p.read_text(encoding="utf-8")) or {})

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
