"""Urgency from the patient: the route the policy says not to wait for (caution/3: C5, C6 for
B), and what to do about it, judged from the patient's own answers whatever the readings.

Plain classification for every surface (the words are the views'): the letter, the terminal,
the page, the CDS card, the adaptive form's completion, what-if, every decision's JSON
(`urgent`) and a cohort's lines (`batch`) all take it from here. It reads a decision through
`Judged`: every requirement's status, not the tree, so that a cohort's line, whose verdict is
cached without a tree (`Standing`), is judged by the same function as explain's Decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .sources import UNCONFIRMED as SOURCE_KINDS_UNCONFIRMED
from .sources import Stated

if TYPE_CHECKING:  # a decision's JSON names its urgency: decision.py imports this module
    from .decision import Decision, Node
    from .ruleset import Policy


class Judged(Protocol):
    """What urgency reads of a decision: a `Decision` (explain, the service, every view), or a
    cohort's line (`Standing`, from its cached verdict and its record)."""

    @property
    def policy(self) -> Policy: ...

    @property
    def decision(self) -> str: ...  # eligible | not_eligible | undetermined

    @property
    def statuses(self) -> Mapping[str, str]: ...  # every requirement of the tree: its status

    @property
    def filled(self) -> tuple[Stated, ...]: ...  # values no one answered (Decision.filled)

    @property
    def barred(self) -> tuple[str, ...]: ...  # fields the rules bar raising (Decision.barred)

    @property
    def possible(self) -> tuple[str, ...]: ...

    @property
    def unconfirmed(self) -> tuple[Stated, ...]: ...  # the verdict rests on them (Decision.unconfirmed)


@dataclass(frozen=True)
class Standing:
    """A decision as urgency reads it, without its tree: a cohort's line (batch), from its
    verdict (every requirement's status, cached by what clingo saw of the patient) and from its
    own record (`filled`, `barred`, `under_unconfirmed`: never cached)."""

    policy: Policy
    decision: str
    statuses: Mapping[str, str]
    possible: tuple[str, ...]
    filled: tuple[Stated, ...] = ()
    barred: tuple[str, ...] = ()
    under_unconfirmed: tuple[str, ...] = ()  # as Decision's: the decisions were those values unknown

    @property
    def unconfirmed(self) -> tuple[Stated, ...]:
        """As `Decision.unconfirmed`."""
        return doubted(self.policy, self.filled) if self.under_unconfirmed else ()


def urgency(decision: Judged) -> tuple[str, str] | None:
    """A route the patient meets, or may meet, that the policy says not to wait for (its id),
    with what to do, in this order:

    - `unsuitable`: the procedure is not suitable for the patient (unsuitable/3 not met): the
      urgency is for another procedure, never a push toward this one;
    - `confirm`: whether it is suitable is not known (the sex, the knee's compartments), or
      known only from a source no one confirmed (the EHR's administrative gender, an older
      form), or the route itself rests on such a value: confirm that first, never "do not
      delay the referral" for it, nor "do not refer" (unless a requirement beside suitability
      refuses it whatever the answer: `refused`);
    - `refer`: eligible: refer without delay;
    - `refused`: a requirement beside the one the route cautions about (A: the MSK findings) is
      not met under every reading: this procedure is refused whatever the ICB is asked; the
      urgency stands for the care indicated instead, never "do not delay the referral";
    - `assess`: care the policy asks under every reading is not given yet (an MSK assessment,
      `Policy.steps`, outside what the route cautions about): do it now;
    - `ask`: the requirement the route cautions about (B, care) is not met or not known: ask
      the ICB now, not after more care;
    - `settle`: the route and care are met, something else is open: settle it now;
    - `find out`: some of a route met, none of it refuted, the rest not known; or a route not
      known because sources disagree on what it tests, one of them meeting it (an older form's
      "at risk of joint destruction: yes" against a newer "no"): find out first.
    """
    policy = decision.policy
    status = decision.statuses
    # not suitable on a value no one confirmed (Patient.gender, an old form's) is to confirm
    doubted = {s.field for s in unconfirmed_sources(decision)}
    unsuitable = any(
        status.get(rid) == "not_met" and not doubted & set(policy.tested_below(rid))
        for rid in policy.unsuitable
    )
    unconfirmed = any(status.get(rid) == "unknown" for rid in policy.unsuitable) or bool(doubted)
    for rid, routes in policy.cautions.items():
        refused_beyond = set(refused_parts(decision, rid)) - set(policy.unsuitable)
        for route in routes:
            if status.get(route) != "met":
                continue
            if unsuitable:
                return route, "unsuitable"
            # the route itself on an old form's fact, or whether the procedure suits not known:
            # confirm first, unless a requirement beside suitability refuses it whatever they are
            refused = bool(refused_beyond) and not steps_to_give(decision)  # (not assessed: a step)
            if (route_doubts(decision, route) or unconfirmed) and not refused:
                return route, "confirm"
            if decision.decision == "eligible":
                return route, "refer"
            if steps_to_give(decision):  # care still to give (an MSK assessment) comes first
                return route, "assess"
            if refused_parts(decision, rid):
                return route, "refused"
            return route, "ask" if status.get(rid) != "met" else "settle"
    for routes in policy.cautions.values():  # a source says it is met, another not: whatever else
        for route in routes:
            if status.get(route) == "unknown" and _disputed_meets(decision, route):
                return route, "find out"
    if decision.decision == "eligible":
        return None
    for rid, routes in policy.cautions.items():
        # care met, a route only possible: nothing waits for it, unless the procedure does not (or
        # may not) suit the patient: then the urgency is for the procedure indicated instead
        waits = status.get(rid) != "met" or unsuitable or unconfirmed
        for route in routes:
            parts = (
                [as_confirmed(decision, c) for c in policy.requirements[route].parts]
                if route in status
                else []
            )
            if waits and "met" in parts and "not_met" not in parts:
                return route, "find out"  # some of it met, none refuted (but on values to confirm)
    return None


def as_confirmed(decision: Judged, rid: str) -> str | None:
    """A requirement's status as what a clinician has confirmed for this referral shows it: not
    met only on values no one confirmed (UNCONFIRMED: a 'no' pre-filled from the EHR, an older
    form's) is not known. An urgent route refuted only by such a value may be met: find out."""
    status = decision.statuses.get(rid)
    if status != "not_met" or not decision.filled:
        return status
    requirement = decision.policy.requirements[rid]
    if requirement.test is not None:  # a condition: refuted by what its field's source says
        doubted = {s.field for s in decision.filled if s.kind in UNCONFIRMED}
        return "unknown" if requirement.test.field in doubted else status
    # its parts as confirmed, combined as the rules combine them (Kleene): a part refuted by a
    # clinician's answer still refutes an all_of, whatever else was pre-filled
    parts = [as_confirmed(decision, part) for part in requirement.parts]
    decisive, other = ("not_met", "met") if requirement.form == "all_of" else ("met", "not_met")
    if decisive in parts:
        return decisive
    return other if all(p == other for p in parts) else "unknown"


def possible_routes(decision: Judged) -> frozenset[str]:
    """The urgent routes (caution/3) the patient may meet: not known, or not met only on values
    no one confirmed (`as_confirmed`)."""
    return frozenset(
        route
        for routes in decision.policy.cautions.values()
        for route in routes
        if as_confirmed(decision, route) == "unknown"
    )


def _disputed_meets(decision: Judged, route: str) -> bool:
    """Whether sources that disagree on a field the route tests (`Decision.conflicts`, whether or
    not the decision turns on them; a cohort's line weighs none) may meet it: one of them gives
    the value its condition asks (`= true`), or, for a route of several conditions or another
    comparison, any disagreement on what it tests (it may)."""
    test = decision.policy.requirements[route].test
    tested = set(decision.policy.tested_below(route))
    for conflict in getattr(decision, "conflicts", ()):
        if conflict.field not in tested:
            continue
        wanted = [test.value] if test is not None and test.op == "eq" and test.field == conflict.field else []
        if not wanted or any(s.value in wanted for s in conflict.values):
            return True
    return False


def urgent_json(decision: Judged) -> dict[str, Any] | None:
    """The route the policy says not to wait for that the patient meets or may meet, and the
    action it asks first (`urgency`), as every decision's JSON and every cohort line name it:
    `{route, label, status, action, to_confirm?}`; None for none. A program that reads only
    the verdict must not miss it."""
    urgent = urgency(decision)
    if urgent is None:
        return None
    route, action = urgent
    status = decision.statuses[route]
    said: dict[str, Any] = {
        "route": route,
        "label": decision.policy.requirements[route].label,
        "status": status,
        "action": action,
    }
    # what the urgent line asks to confirm first: the values no one confirmed the route rests on
    # (met, or refuted only by them: find out), whether the procedure suits the patient on them,
    # and the verdict's
    doubts = (
        [s.field for s in route_doubts(decision, route)] if status == "met" or action == "find out" else []
    )
    if action in ("confirm", "find out"):
        doubts += [s.field for s in unconfirmed_sources(decision) if s.field not in doubts]
    doubts += [s.field for s in decision.unconfirmed if s.field not in doubts]
    if doubts:  # the facts the route or the verdict rests on that no one confirmed: first
        said["to_confirm"] = doubts
    return said


def urgent_route(decision: Decision) -> tuple[Node, str] | None:
    """`urgency` with the route's node of the decision's tree, for the views' words."""
    urgent = urgency(decision)
    return None if urgent is None else (_nodes(decision)[urgent[0]], urgent[1])


def steps_to_give(decision: Judged) -> list[str]:
    """The care the policy asks that is not given yet and that a clinician can give now
    (`Policy.steps` not met), never under a requirement an urgent route met says not to wait
    for (more conservative care for a C6 patient), nor care the rules bar for this patient
    (bars/4, `Decision.barred`: none of the conservative care contra-indicated now can be
    documented that was not)."""
    policy = decision.policy
    status = decision.statuses
    waiting = {
        r.id
        for rid, routes in policy.cautions.items()
        if any(status.get(route) == "met" for route in routes)
        for r in policy.below(rid)
    }
    return [
        s
        for s in policy.steps
        if s in status and status[s] != "met" and s not in waiting and not _barred(decision, s)
    ]


def care_steps(decision: Decision) -> list[Node]:
    """`steps_to_give`, as the nodes of the decision's tree."""
    nodes = _nodes(decision)
    return [nodes[s] for s in steps_to_give(decision)]


def _barred(decision: Judged, step: str) -> bool:
    test = decision.policy.requirements[step].test
    return test is not None and test.field in decision.barred


UNCONFIRMED = SOURCE_KINDS_UNCONFIRMED
"""The sources that never confirm a value for this referral, as asp/sources.lp declares them
(unconfirmed/1): the EHR's records (administrative gender, sex for clinical use), an older form
the newest leaves blank (knee compartments spread; the form may be years old), an answer a form
filler prefilled from the EHR that no one changed, the form for every procedure's answers."""


def refused_parts(decision: Judged, cautioned: str) -> list[str]:
    """The parts of the decision root, other than the requirement an urgent route cautions
    against waiting for (`cautioned`: B) and those met, that are not met under every reading of
    the text (no contested reading funds the patient)."""
    if decision.decision != "not_eligible" or "eligible" in decision.possible:
        return []
    policy = decision.policy
    root = policy.requirements[policy.root]
    status = decision.statuses
    return [r for r in root.parts if r != cautioned and status.get(r) == "not_met"]


def refused_beside(decision: Decision, cautioned: str) -> list[Node]:
    """`refused_parts`, as the nodes of the decision's tree."""
    nodes = _nodes(decision)
    return [nodes[r] for r in refused_parts(decision, cautioned)]


def route_doubts(decision: Judged, route: str) -> list[Stated]:
    """The values a met urgent route rests on that only an UNCONFIRMED source gave (an older
    form's 'conservative care contra-indicated'): the urgency is to confirm first, too."""
    if not decision.filled:  # nearly every cohort line: every answer the clinician's
        return []
    tested = set(decision.policy.tested_below(route))
    return [s for s in decision.filled if s.kind in UNCONFIRMED and s.field in tested]


def unconfirmed_sources(decision: Judged) -> list[Stated]:
    """The values that say whether the procedure suits the patient (unsuitable/3) that only an
    UNCONFIRMED source gave, in field order."""
    if not decision.filled:
        return []
    policy = decision.policy
    tested = {field for rid in policy.unsuitable for field in policy.tested_below(rid)}
    return sorted(
        (s for s in decision.filled if s.kind in UNCONFIRMED and s.field in tested), key=lambda s: s.field
    )


def doubted(policy: Policy, filled: tuple[Stated, ...]) -> tuple[Stated, ...]:
    """The values of the policy's fields that only a source no one confirmed for this referral
    gave (UNCONFIRMED), whether or not the decision turns on them (`Decision.doubted`; a
    cohort's line weighs them as explain does)."""
    fields = policy.fields()
    return tuple(s for s in filled if s.kind in UNCONFIRMED and s.field in fields)


def _nodes(decision: Decision) -> dict[str, Node]:
    return {n.id: n for n in decision.tree.walk()}
