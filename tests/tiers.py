"""The suite's tiers (see conftest.py and docs/contributors.md).

`python -m pytest` is the quick run: it leaves out the tests marked `slow` (browser, mutation,
exhaustive, processes) and runs each property test on a fifth of its examples. Any other
selection, such as `.ci/run`'s `-m "slow or not slow"` (everything) or `-m slow`, is thorough:
every property test on all its examples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

THOROUGH = True  # set by conftest.pytest_configure from the run's -m


def examples(thorough: int) -> int:
    """How many examples a property test tries: all of them in a thorough run, a fifth (at
    least 5) in the quick one."""
    return thorough if THOROUGH else max(5, thorough // 5)


def a_few(
    values: Sequence[Any],
    quick: int,
    tier: pytest.MarkDecorator = pytest.mark.exhaustive,
    ids: Callable[[Any], str] | None = None,
) -> list[Any]:
    """`values` as parameters: about `quick` of them, spread over the list, in the quick run;
    the rest marked `tier` (exhaustive, unless said), for the thorough run."""
    step = max(1, -(-len(values) // quick))
    return [
        pytest.param(v, marks=() if n % step == 0 else tier, id=ids(v) if ids else None)
        for n, v in enumerate(values)
    ]
