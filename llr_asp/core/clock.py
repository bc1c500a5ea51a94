"""The time now: one clock for what is stamped with it (an adaptive form's `authored`) and what
is weighed against it (a form dated ahead of it, answers older than answers_current_for/1 on a
CDS card). Call it as `clock.now()`, so that the tests can set it in one place."""

from __future__ import annotations

import datetime


def now() -> datetime.datetime:
    """The time now, in UTC."""
    return datetime.datetime.now(datetime.timezone.utc)
