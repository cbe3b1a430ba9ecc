"""Chinese NLU for the 12345 hotline: ``parse(text, context) -> Parse``.

Backends: ``builtin`` (default; a trained artifact + rules, no network) and ``rasa`` (HTTP to a
Rasa server's ``/model/parse``; see :mod:`nlu.rasa_backend`).
"""

from __future__ import annotations

import threading
from typing import Any

from .base import INTENTS, REQUEST_TYPES, NluBackend, Parse

__all__ = ["INTENTS", "REQUEST_TYPES", "NluBackend", "Parse", "get_backend", "parse"]

_cache: dict[tuple[Any, ...], NluBackend] = {}
_lock = threading.Lock()


def _key(settings: Any) -> tuple[Any, ...]:
    return (
        getattr(settings, "nlu_backend", "builtin"),
        str(getattr(settings, "nlu_model_path", None)),
        getattr(settings, "rasa_url", ""),
    )


def get_backend(settings: Any = None) -> NluBackend:
    """The backend chosen by ``settings.nlu_backend``, built once per distinct settings."""
    if settings is None:
        from config.settings import get_settings

        settings = get_settings()
    key = _key(settings)
    with _lock:
        backend = _cache.get(key)
        if backend is None:
            from .builtin import BuiltinBackend

            if key[0] == "rasa":
                from .rasa_backend import RasaBackend

                backend = RasaBackend(settings.rasa_url, fallback=BuiltinBackend.from_settings(settings))
            else:
                backend = BuiltinBackend.from_settings(settings)
            _cache[key] = backend
    return backend


def parse(text: str, context: dict[str, Any] | None = None) -> Parse:
    """Parse with the default settings' backend (safe to call from an asyncio worker: pure CPU)."""
    return get_backend().parse(text, context)
