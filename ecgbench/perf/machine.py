"""The state of the machine at measurement time: load average, and waiting for a quiet machine.

Why: on a shared 2-core machine another process's load halves a throughput number; the report records the
load it was measured at, and the report command can wait for the machine to calm down first.
"""
from __future__ import annotations

import os
import time


def load_average() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def wait_until_quiet(threshold: float, timeout_s: float, poll_s: float = 15.0) -> float:
    """Sleep until the 1-minute load is below ``threshold`` or ``timeout_s`` passed; the load at the end."""
    deadline = time.monotonic() + timeout_s
    while (load := load_average()) >= threshold and time.monotonic() < deadline:
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
    return load
