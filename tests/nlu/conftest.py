from __future__ import annotations

import pytest

from nlu.builtin import BuiltinBackend


@pytest.fixture(scope="session")
def nlu() -> BuiltinBackend:
    """The builtin backend from the committed artifact (no training in tests)."""
    from config.settings import Settings

    return BuiltinBackend.from_settings(Settings())
