"""Fault injection for crash tests: ``HOTLINE_FAULT=<point>`` makes the process die at that point.

Used by the test that kills a worker between reading and acknowledging a message. The process exits
with ``os._exit`` (no cleanup, like SIGKILL) the first time it reaches the named point.
"""

from __future__ import annotations

import os


def crash_point(name: str) -> None:
    if os.environ.get("HOTLINE_FAULT") == name:
        os._exit(137)
