"""The bot's Chinese texts, loaded once from ``config/texts.yml``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

TEXTS_PATH = Path(__file__).resolve().parent.parent / "config" / "texts.yml"


@lru_cache
def texts() -> dict[str, Any]:
    with TEXTS_PATH.open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    return data


def say(key: str, **values: Any) -> str:
    template: str = texts()[key]
    return template.format(**values) if values else template


def status_name(status: str) -> str:
    names: dict[str, str] = texts()["status_names"]
    return names.get(status, status)
