"""Reading shown atoms fast: what each shown symbol means, looked up by the symbol's value."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import clingo

_M = TypeVar("_M")


class ShownAtoms(Generic[_M]):
    """What each shown symbol means: worked out by `meaning` the first time the symbol is
    seen, then looked up by the symbol's value.

    A dict keyed by clingo.Symbol took about 1 µs a lookup (0.15 ms a decision): a symbol
    hashes and compares through Python methods, and its hash is poor in the low bits that a
    dict probes first. A symbol's value (`_rep`, an int) is the symbol itself, since clingo
    interns every symbol: keyed by it, a lookup compares integers.
    """

    def __init__(self, meaning: Callable[[clingo.Symbol], _M]) -> None:
        self._meaning = meaning
        self._known: dict[int, _M] = {}

    def __call__(self, symbols: Iterable[clingo.Symbol]) -> list[_M]:
        known = self._known
        return [known[value] if (value := s._rep) in known else self._learn(s) for s in symbols]

    def _learn(self, symbol: clingo.Symbol) -> _M:
        meaning = self._known[symbol._rep] = self._meaning(symbol)
        return meaning
