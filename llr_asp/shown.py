"""Reading shown atoms fast: what each atom of some predicates means, by the hash of its symbol."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import clingo

_M = TypeVar("_M")


class ShownAtoms(Generic[_M]):
    """What each atom of some predicates means, looked up by the hash of its symbol.

    A dict keyed by clingo.Symbol took about 1 µs a lookup: a symbol compares through a
    Python method, and its hash (the address of the interned symbol) is poor in the low bits
    that a dict probes first, so lookups compared many symbols. Keyed by the hash itself, a
    lookup compares integers. Every atom of the predicates is known after grounding, so two
    that share a hash are found here and kept apart (by symbol) instead.
    """

    def __init__(
        self,
        control: clingo.Control,
        signatures: list[tuple[str, int]],
        meaning: Callable[[clingo.Symbol], _M],
    ) -> None:
        symbols = [
            a.symbol for name, arity in signatures for a in control.symbolic_atoms.by_signature(name, arity)
        ]
        hashes = Counter(map(hash, symbols))
        self._by_hash = {hash(s): meaning(s) for s in symbols if hashes[hash(s)] == 1}
        self._clashing = {s: meaning(s) for s in symbols if hashes[hash(s)] > 1}

    def __call__(self, symbols: Iterable[clingo.Symbol]) -> list[_M]:
        by_hash = self._by_hash
        return [by_hash[h] if (h := hash(s)) in by_hash else self._clashing[s] for s in symbols]
