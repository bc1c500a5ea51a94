"""The warm reasoners of one server process: every rule set grounded once, at start-up.

clingo controls are not thread-safe, so the engines are used under one lock, and the API's
reasoning runs on one thread of their own, off the event loop; a second worker process
(`--workers 2`) is how the service uses a second core. A thread of their own, not Starlette's
pool: no lock contention and no task group per request (bench_serve: 737 -> 965 explains/s;
answering on the event loop itself, which would stall every other request, 954).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from ..batch import Screener
from ..interview import Interviewer
from ..ruleset import RuleSet, default_examples_dir
from ..whatif import WhatIfSearch

_T = TypeVar("_T")


@dataclass
class Engines:
    rules: RuleSet
    interviewer: Interviewer  # decides (it is a Reasoner) and chooses the next question
    whatif: WhatIfSearch
    screener: Screener
    examples: dict[str, dict[str, object]]  # bundled example records, by file stem
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="llr-asp-engines")
    )

    @classmethod
    def load(cls, rules: Path | None = None) -> Engines:
        interviewer = Interviewer.load(rules)
        return cls(
            interviewer.rules,
            interviewer,
            WhatIfSearch.load(rules),
            Screener.load(rules),
            _examples(default_examples_dir()),
        )

    @contextmanager
    def held(self) -> Iterator[Engines]:
        """The engines, for one request at a time."""
        with self._lock:
            yield self

    async def run(self, work: Callable[[Engines], _T]) -> _T:
        """`work(engines)` on the engines' thread, holding them, while the event loop serves
        other requests."""

        def held() -> _T:
            with self.held():
                return work(self)

        return await asyncio.get_running_loop().run_in_executor(self._thread, held)


def _examples(directory: Path) -> dict[str, dict[str, object]]:
    examples = {}
    for path in sorted(directory.glob("*.json")):
        try:
            examples[path.stem] = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError):
            continue
    return examples
