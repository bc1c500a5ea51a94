"""The warm reasoners of one server process: every rule set grounded once, at start-up.

clingo controls are not thread-safe and requests run on a thread pool, so each engine is used
under one lock; a second worker process (`--workers 2`) is how the service uses a second core.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..batch import Screener
from ..interview import Interviewer
from ..ruleset import RuleSet, default_examples_dir
from ..whatif import WhatIfSearch


@dataclass
class Engines:
    rules: RuleSet
    interviewer: Interviewer  # decides (it is a Reasoner) and chooses the next question
    whatif: WhatIfSearch
    screener: Screener
    examples: dict[str, dict[str, object]]  # bundled example records, by file stem
    _lock: threading.Lock

    @classmethod
    def load(cls, rules: Path | None = None) -> Engines:
        interviewer = Interviewer.load(rules)
        return cls(
            interviewer.rules,
            interviewer,
            WhatIfSearch.load(rules),
            Screener.load(rules),
            _examples(default_examples_dir()),
            threading.Lock(),
        )

    @contextmanager
    def held(self) -> Iterator[Engines]:
        """The engines, for one request at a time."""
        with self._lock:
            yield self


def _examples(directory: Path) -> dict[str, dict[str, object]]:
    examples = {}
    for path in sorted(directory.glob("*.json")):
        try:
            examples[path.stem] = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError):
            continue
    return examples
