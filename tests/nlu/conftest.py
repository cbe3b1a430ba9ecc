from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from nlu.builtin import BuiltinBackend


@pytest.fixture(scope="session")
def nlu() -> BuiltinBackend:
    """The builtin backend from the committed artifact (no training in tests)."""
    from config.settings import Settings

    return BuiltinBackend.from_settings(Settings())


@pytest.fixture
def through_npz(tmp_path: Path) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """Write a model's arrays the way the artifact stores them and read them back."""

    def round_trip(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        path = tmp_path / "arrays.npz"
        np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    return round_trip
