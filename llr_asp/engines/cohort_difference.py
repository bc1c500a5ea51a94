"""`llr-asp diff OLD NEW --cohort FILE`: what a new edition (or any second policy) does to the
patients a commissioner actually has.

Both policies decide every record in one pass, as `batch` decides it: the Screener solves every
policy of the rule set for a patient at once, so a record costs one screening whichever of its
policies are read (`batch.Choice.editions`). A record's change falls in one class:

- `newly_eligible`, `newly_refused`, `newly_undetermined`: the decision differs, by what it is now
  (`newly_eligible_on_the_adopted_reading`: eligible, but another reading of the text would not
  fund: the ICB must confirm, so never counted as plainly eligible);
- `newly_contested`, `newly_robust`: the same decision, now resting on a reading of the text, or
  no longer.

Each change names the requirements that make it: those not met, or left open at the decision's
root, under one policy and not the other (for a change of robustness, the requirements whose
readings it rests on). A line that is not a valid patient is counted as an error, as in batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Union

from ..core.ruleset import Policy
from .batch import LineError, Result, Screening

CLASSES = (
    "newly_eligible",
    "newly_eligible_on_the_adopted_reading",
    "newly_refused",
    "newly_undetermined",
    "newly_contested",
    "newly_robust",
)
"""The classes of change, in the order reports list them."""

BY_DECISION = {
    "eligible": "newly_eligible",
    "not_eligible": "newly_refused",
    "undetermined": "newly_undetermined",
}


def change_class(old: Screening, new: Screening) -> str | None:
    """The class of the change from `old` to `new` (the same record's lines), None for none."""
    if old.decision != new.decision:
        if new.decision == "eligible" and not new.robust:  # never counted as plainly eligible
            return "newly_eligible_on_the_adopted_reading"
        return BY_DECISION[new.decision]
    if old.robust != new.robust:
        return "newly_contested" if old.robust else "newly_robust"
    return None


@dataclass(frozen=True)
class Change:
    """One record decided otherwise by the new policy."""

    kind: str  # one of CLASSES
    old: Screening
    new: Screening
    requirements: tuple[str, ...]  # the requirements that make the change

    def to_json(self) -> dict[str, Any]:
        def side(s: Screening) -> dict[str, Any]:
            return {
                "policy": s.policy,
                "decision": s.decision,
                "robust": s.robust,
                "stopped_by": list(s.stopped_by),
            }

        return {
            "line": self.new.line,
            "patient": self.new.patient,
            "class": self.kind,
            "requirements": list(self.requirements),
            "old": side(self.old),
            "new": side(self.new),
        }


def changed_requirements(old: Screening, new: Screening, order: dict[str, int]) -> tuple[str, ...]:
    """The requirements that make the change, in `order` (the new policy's tree order, then the
    old's, the decision roots left out): not met under one
    and not the other, or open at the root under one and not the other; for a change of
    robustness alone, those whose readings the contested side rests on."""
    found = (set(old.failed) ^ set(new.failed)) | (set(old.open) ^ set(new.open))
    if not found & order.keys() and old.robust != new.robust:
        found = {r for c in (*old.contested, *new.contested) for r in c.requirements}
    return tuple(sorted(found & order.keys(), key=order.__getitem__))


@dataclass
class CohortDifference:
    """The counts of a cohort's changes between two policies."""

    old: Policy
    new: Policy
    rules: str  # sha256 of the rule set
    patients: int = 0  # valid records compared
    errors: int = 0  # lines that are not a valid patient
    counts: Counter[str] = field(default_factory=Counter)
    requirements: dict[str, Counter[str]] = field(default_factory=dict)  # class -> requirement -> count

    def add(self, item: Change | LineError | None) -> None:
        if isinstance(item, LineError):
            self.errors += 1
            return
        self.patients += 1
        if item is not None:
            self.counts[item.kind] += 1
            self.requirements.setdefault(item.kind, Counter()).update(item.requirements)

    @property
    def unchanged(self) -> int:
        return self.patients - sum(self.counts.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "old": self.old.edition_json(self.rules),
            "new": self.new.edition_json(self.rules),
            "patients": self.patients,
            "errors": self.errors,
            "unchanged": self.unchanged,
            "changed": {kind: self.counts[kind] for kind in CLASSES},
            "requirements": {
                kind: dict(self.requirements[kind].most_common())
                for kind in CLASSES
                if kind in self.requirements
            },
        }


Compared = Union[Change, LineError, None]


def compared(results: Iterable[Result], old: Policy, new: Policy) -> Iterator[Compared]:
    """Each record of `results` (batch's lines decided for exactly `old` and then `new`,
    `Choice.editions`) as its change, None for none, or its error line."""
    order: dict[str, int] = {}  # the requirements below the roots (a root's change is the decision's)
    for policy in (new, old):
        for r in policy.below(policy.root):
            if r.id != policy.root:
                order.setdefault(r.id, len(order))
    pending: Screening | None = None
    for result in results:
        if isinstance(result, LineError):
            yield result
            continue
        if pending is None:
            pending = result
            continue
        before, pending = pending, None
        kind = change_class(before, result)
        yield (
            None
            if kind is None
            else Change(kind, before, result, changed_requirements(before, result, order))
        )
