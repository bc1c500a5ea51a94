"""A bound on the service's log: lines written at someone else's request (uvicorn's "Invalid HTTP
request received." for every malformed request, a refused fetch, a fault) are free for anyone
to cause, unauthenticated. Past `LINES` in `SECONDS` the rest are dropped and counted; the first
line after the window says how many were dropped, so the operator sees the flood without the
disk filling with it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

LINES = 60
SECONDS = 60.0
LOGGER = "uvicorn.error"


class RateBound(logging.Filter):
    """At most `lines` records every `seconds` pass; the others are dropped and counted."""

    def __init__(
        self, lines: int = LINES, seconds: float = SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.lines, self.seconds, self.clock = lines, seconds, clock
        self.began, self.passed, self.dropped = clock(), 0, 0

    def filter(self, record: logging.LogRecord) -> bool:
        now = self.clock()
        if now - self.began >= self.seconds:
            if self.dropped:  # said once, on the first line of the new window
                record.msg = (
                    f"[{self.dropped} log lines dropped in the {self.seconds:.0f} s before] {record.msg}"
                )
            self.began, self.passed, self.dropped = now, 0, 0
        if self.passed >= self.lines:
            self.dropped += 1
            return False
        self.passed += 1
        return True


def bound(logger: logging.Logger | None = None) -> RateBound:
    """The service's log bounded (once per process: a second call finds the first bound)."""
    logger = logger or logging.getLogger(LOGGER)
    found = next((f for f in logger.filters if isinstance(f, RateBound)), None)
    if found is None:
        found = RateBound()
        logger.addFilter(found)
    return found
