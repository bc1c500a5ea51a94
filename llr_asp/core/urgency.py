"""Urgency from the patient: the route the policy says not to wait for (caution/3: C5, C6 for
B), and what to do about it, judged from the patient's own answers whatever the readings.

Plain classification for every surface (the words are the views'): the letter, the terminal,
the page, the CDS card, the adaptive form's completion, what-if and every decision's JSON
(`urgent`) all take it from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .sources import UNCONFIRMED as SOURCE_KINDS_UNCONFIRMED
from .sources import Stated

if TYPE_CHECKING:  # a decision's JSON names its urgency: decision.py imports this module
    from .decision import Decision, Node


def urgent_route(decision: Decision) -> tuple[Node, str] | None:
    """A route the patient meets, or may meet, that the policy says not to wait for, with what
    to do, in this order:

    - `unsuitable`: the procedure is not suitable for the patient (unsuitable/3 not met): the
      urgency is for another procedure, never a push toward this one;
    - `confirm`: whether it is suitable is not known (the sex, the knee's compartments), or
      known only from a source no one confirmed (the EHR's administrative gender, an older
      form), or the route itself rests on such a value: confirm that first, never "do not
      delay the referral" for it, nor "do not refer";
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
    nodes = {n.id: n for n in decision.tree.walk()}
    status = {rid: n.status for rid, n in nodes.items()}
    # not suitable on a value no one confirmed (Patient.gender, an old form's) is to confirm
    doubted = {s.field for s in unconfirmed_sources(decision)}
    unsuitable = any(
        status.get(rid) == "not_met" and not doubted & set(policy.tested_below(rid))
        for rid in policy.unsuitable
    )
    unconfirmed = any(status.get(rid) == "unknown" for rid in policy.unsuitable) or bool(doubted)
    for rid, routes in policy.cautions.items():
        for route in routes:
            if status.get(route) != "met":
                continue
            if unsuitable:
                return nodes[route], "unsuitable"
            if unconfirmed or route_doubts(decision, route):  # the route itself on an old form's fact
                return nodes[route], "confirm"
            if decision.decision == "eligible":
                return nodes[route], "refer"
            if care_steps(decision):  # care still to give (an MSK assessment) comes first
                return nodes[route], "assess"
            if refused_beside(decision, rid):
                return nodes[route], "refused"
            return nodes[route], "ask" if status.get(rid) != "met" else "settle"
    if unsuitable or decision.decision == "eligible":
        return None
    for rid, routes in policy.cautions.items():
        for route in routes:
            parts = [c.status for c in nodes[route].children] if route in nodes else []
            if status.get(rid) != "met" and "met" in parts and "not_met" not in parts:
                return nodes[route], "find out"  # some of it met, none refuted, the rest not known
            if status.get(route) == "unknown" and _disputed_meets(decision, nodes[route]):
                return nodes[route], "find out"  # a source says it is met, another not (B met or not)
    return None


def _disputed_meets(decision: Decision, route: Node) -> bool:
    """Whether sources that disagree on a field the route tests (`Decision.disputed`) may meet
    it: one of them gives the value its condition asks (`= true`), or, for a route of several
    conditions or another comparison, any disagreement on what it tests (it may)."""
    tested = set(decision.policy.tested_below(route.id))
    for conflict in decision.disputed:
        if conflict.field not in tested:
            continue
        wanted = [e.test.value for e in route.evidence if e.field == conflict.field and e.test.op == "eq"]
        if not wanted or any(s.value in wanted for s in conflict.values):
            return True
    return False


def care_steps(decision: Decision) -> list[Node]:
    """The care the policy asks that is not given yet and that a clinician can give now
    (`Policy.steps` not met), never under a requirement an urgent route met says not to wait
    for (more conservative care for a C6 patient), nor care the rules bar for this patient
    (bars/4, `Decision.barred`: none of the conservative care contra-indicated now can be
    documented that was not)."""
    policy = decision.policy
    nodes = {n.id: n for n in decision.tree.walk()}
    met = {rid for rid, n in nodes.items() if n.status == "met"}
    waiting = {
        r.id
        for rid, routes in policy.cautions.items()
        if any(route in met for route in routes)
        for r in policy.below(rid)
    }
    return [
        nodes[s]
        for s in policy.steps
        if s in nodes and nodes[s].status != "met" and s not in waiting and not _barred(decision, s)
    ]


def _barred(decision: Decision, step: str) -> bool:
    test = decision.policy.requirements[step].test
    return test is not None and test.field in decision.barred


UNCONFIRMED = SOURCE_KINDS_UNCONFIRMED
"""The sources that never confirm a value for this referral, as asp/sources.lp declares them
(unconfirmed/1): the EHR's records (administrative gender, sex for clinical use), an older form
the newest leaves blank (knee compartments spread; the form may be years old), an answer a form
filler prefilled from the EHR that no one changed, the form for every procedure's answers."""


def refused_beside(decision: Decision, cautioned: str) -> list[Node]:
    """The parts of the decision root, other than the requirement an urgent route cautions
    against waiting for (`cautioned`: B) and those met, that are not met under every reading of
    the text (no contested reading funds the patient)."""
    if decision.decision != "not_eligible" or "eligible" in decision.possible:
        return []
    policy = decision.policy
    beside = set(policy.requirements[policy.root].parts) - {cautioned}
    return [n for n in decision.tree.children if n.id in beside and n.status == "not_met"]


def route_doubts(decision: Decision, route: str) -> list[Stated]:
    """The values a met urgent route rests on that only an UNCONFIRMED source gave (an older
    form's 'conservative care contra-indicated'): the urgency is to confirm first, too."""
    tested = set(decision.policy.tested_below(route))
    return [s for s in decision.filled if s.kind in UNCONFIRMED and s.field in tested]


def unconfirmed_sources(decision: Decision) -> list[Stated]:
    """The values that say whether the procedure suits the patient (unsuitable/3) that only an
    UNCONFIRMED source gave, in field order."""
    policy = decision.policy
    tested = {field for rid in policy.unsuitable for field in policy.tested_below(rid)}
    return sorted(
        (s for s in decision.filled if s.kind in UNCONFIRMED and s.field in tested), key=lambda s: s.field
    )
