"""The verdict cache: what clingo found for a patient, kept by what clingo saw of the patient.

One mechanism for every surface (explain, the service's routes, the questionnaire, batch): a
bounded map, least recently used first out, whose key is the patient's *places*
(`reasoner.PatientInput.places`): each field's value as the class the rules tell apart (a
grade, a boolean, a number's interval between two thresholds and whether it is whole), plus
the policies asked about. Two patients with equal places get the same solve, so its atoms are
solved once. The key holds no patient id and no raw value; what the decision also takes from
the record itself (the id, the values shown as evidence, conflicts, answers filled in from other
sources) is added afresh to each decision, never cached. Each reasoner (one per thread) and
each batch process has its own: a service's workers never share patient data.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

_V = TypeVar("_V")

SIZE = 4096
"""Verdicts kept per cache: a few MB at most (a verdict is a list of shared atom tuples)."""


class VerdictCache(Generic[_V]):
    """A bounded LRU map of verdicts, counting its hits and misses. Not thread-safe."""

    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._kept: OrderedDict[Hashable, _V] = OrderedDict()

    def get(self, key: Hashable) -> _V | None:
        """The verdict kept for `key` (now the most recently used), or None."""
        found = self._kept.get(key)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._kept.move_to_end(key)
        return found

    def put(self, key: Hashable, verdict: _V, trim: bool = True) -> None:
        """Keep `verdict` for `key`; past `size`, the least recently used go (unless `trim`
        is False: a batch keeps a chunk's verdicts until the chunk is written, then `trim`s)."""
        self._kept[key] = verdict
        self._kept.move_to_end(key)
        if trim:
            self.trim()

    def __getitem__(self, key: Hashable) -> _V:
        return self._kept[key]

    def __len__(self) -> int:
        return len(self._kept)

    def trim(self) -> None:
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)

    @property
    def hit_rate(self) -> float:
        asked = self.hits + self.misses
        return self.hits / asked if asked else 0.0
