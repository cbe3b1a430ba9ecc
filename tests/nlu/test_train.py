"""Training's process handling (the full training is exercised in test_cli.py)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from nlu.train import train


def test_a_failed_training_stops_its_second_process(tmp_path: Path) -> None:
    """The request-type fit runs in a second process; when the category side fails, that process
    is stopped with it instead of running on (and keeping the command alive) for a minute."""
    with pytest.raises(FileNotFoundError):
        train(tmp_path / "no-such-data", tmp_path / "m.npz")
    assert multiprocessing.active_children() == []
    assert not (tmp_path / "m.npz").exists()
