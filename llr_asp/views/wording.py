"""Plain wording shared by every renderer (text, Markdown, the page, cards): no Rich, no markup.

A decision is said in one of the verdict classes a clinician can act on. Only a robust decision
(every clinical reading of the policy text agrees) is said plainly; one that is not robust is
always said with its qualification, in the same words wherever it appears.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..core.decision import Contest, Decision, Evidence, Node
from ..core.ruleset import Field, Policy, RuleSet, Value, show
from ..core.sources import Conflict, Stated
from ..core.urgency import care_steps, refused_beside, route_doubts, unconfirmed_sources, urgent_route

if TYPE_CHECKING:
    from ..engines.whatif import Change, WhatIf

VERDICT_WORDS = {"eligible": "ELIGIBLE", "not_eligible": "NOT ELIGIBLE", "undetermined": "UNDETERMINED"}


def counted(number: int, one: str, many: str | None = None) -> str:
    """`1 bad line`, `2 bad lines`, `1 class`, `3 classes`: a count with its noun agreeing."""
    return f"{number:,} {one if number == 1 else many or one + 's'}"


def unnamed_note(records: int, policies: Sequence[str]) -> str | None:
    """What a cohort summary says first of the records that named no policy and were decided
    for every policy (each policy's figures count them); None when there are none, or one policy."""
    if not records or len(policies) < 2:
        return None
    each = "it was" if records == 1 else "each was"
    return (
        f"{counted(records, 'record')} named no policy, so {each} decided for every policy "
        f"({', '.join(policies)}): every policy's figures below count "
        f'{"it" if records == 1 else "them"}. A record\'s "policy" names the procedure it is for.'
    )


class Verdict(Protocol):
    """Anything that says a decision and whether it is robust: a Decision, a batch Screening,
    a WhatIf."""

    @property
    def decision(self) -> str: ...
    @property
    def robust(self) -> bool: ...
    @property
    def possible(self) -> tuple[str, ...]: ...


def tone(decision: Verdict) -> str:
    """The verdict class, for styling: eligible, not_eligible and undetermined when robust;
    contested when a reading of the text would decide otherwise (never shown as plain)."""
    return decision.decision if decision.robust else "contested"


def headline(decision: Verdict) -> str:
    """The verdict as the first words a clinician reads.

    `ELIGIBLE` only when every clinical reading agrees; `ELIGIBLE ON THE ADOPTED READING — the
    ICB must confirm` when another reading refuses (or needs more answers); a refusal that
    another reading would fund says so."""
    words = VERDICT_WORDS[decision.decision]
    if decision.decision == "undetermined":
        words += ": answers missing"
    if decision.robust:
        return words
    disputed = getattr(decision, "disputed", ())
    unconfirmed = getattr(decision, "unconfirmed", ())
    said = _from_sources(decision, unconfirmed)
    if unconfirmed and not disputed and not getattr(decision, "contested", ()):
        them = "them" if len(unconfirmed) > 1 else "it"
        return f"{words} — resting on {said}, not yet confirmed: confirm {them} first"
    # values no one confirmed, and sources that disagree, come first whatever else is open: the
    # ICB is asked on settled, confirmed ones
    fields = ", ".join(_field(decision, c.field) for c in disputed)
    first = f"first confirm {said} (not yet confirmed); " if unconfirmed else ""
    if disputed and getattr(decision, "contested", ()):
        first += f"first settle {fields} (the sources disagree); "
    if disputed and not getattr(decision, "contested", ()):
        return f"{words} — {first}the record's sources disagree on {fields}: settle it first"
    if decision.decision == "eligible":
        return f"{words} ON THE ADOPTED READING — {first}the ICB must confirm"
    if decision.decision == "not_eligible":
        if "eligible" in decision.possible:
            fund = "another reading of the policy would fund: ask the ICB"
            return f"{words} ON THE ADOPTED READING — {first}{fund}"
        return f"{words} ON THE ADOPTED READING — {first}another reading needs more answers"
    if "eligible" in decision.possible:
        return f"{words} — {first}and another reading of the policy could fund: ask the ICB"
    return f"{words} — {first}readings of the policy text differ"


def _from_sources(decision: object, values: Sequence[Stated], valued: bool = False) -> str:
    """Values no one confirmed, by source: `sex (male) from the answers pre-filled from the EHR`,
    or, for more than two from one source (a form of years ago), `18 answers from the ARP 55
    answers of 2016-01-01`, so that the verdict is never lost behind them."""
    by_source: dict[str, list[Stated]] = {}
    for stated in values:
        by_source.setdefault(source_words(stated), []).append(stated)
    return " and ".join(
        f"{len(given)} answers from {source}"
        if len(given) > 2
        else " and ".join(
            f"{_field(decision, s.field)}{f' ({_said(s.value)})' if valued else ''} from {source}"
            for s in given
        )
        for source, given in by_source.items()
    )


def _field(decision: object, path: str) -> str:
    """A field as running text names it (`Policy.names`: `sex`, `at risk of joint destruction
    …`), never its JSON path; the path for a verdict that carries no policy."""
    policy = getattr(decision, "policy", None)
    names = getattr(policy, "names", {})
    return lower_first(names[path]) if path in names else path


def contested_summary(decision: Decision) -> str:
    """One sentence under the headline of a decision that is not robust: what it rests on, and
    what the clinician can do about it; first, the values no one confirmed that it rests on
    (`unconfirmed_summary`), to confirm before anything else."""
    unconfirmed = unconfirmed_summary(decision)
    if not decision.contested:
        return unconfirmed or ""
    said = _contest_summary(decision)
    return f"{unconfirmed} {said}" if unconfirmed else said


def unconfirmed_summary(decision: Decision) -> str | None:
    """What a decision resting on values no one confirmed for this referral asks first, naming
    them as the headline does (`sex (female) from the answers pre-filled from the EHR`) and
    what it would be were they not known; None when it rests on none."""
    values = decision.unconfirmed
    if not values:
        return None
    named = _from_sources(decision, values, valued=True)
    others = [d for d in decision.under_unconfirmed if d != decision.decision]
    under = " or ".join("not yet decided" if d == "undetermined" else VERDICT_WORDS[d] for d in others)
    it = "it" if len(values) == 1 else "them"
    return (
        f"The decision rests on {named}, which no one has confirmed for this referral: confirm {it} "
        f"first (were {'it' if len(values) == 1 else 'they'} not known, the patient would be {under})."
    )


def _contest_summary(decision: Decision) -> str:
    policy = decision.policy
    points = ", ".join(
        dict.fromkeys(requirement_words(policy, t.requirement) for c in decision.contested for t in c.taken)
    )
    others = [d for d in decision.possible if d != decision.decision]
    under = " or ".join("not yet decided" if d == "undetermined" else VERDICT_WORDS[d] for d in others)
    said = (
        f"The policy text can be read another way at {points}: under another reading the patient is {under}."
    )
    if decision.to_settle:
        said += " The answers listed below could settle it."
    if any(d != "undetermined" for d in others):
        said += " The ICB must confirm which reading applies."
    return said


def requirement_words(policy: Policy, rid: str) -> str:
    """A requirement as a reader knows it: its label, then its id once: `Significant functional
    impairment (SFI)`."""
    requirement = policy.requirements.get(rid)
    return f"{requirement.label} ({rid})" if requirement else rid


def contest_line(contest: Contest, policy: Policy) -> str:
    """One contest in words: the alternative(s) taken, each on the requirement it reads, then the
    decision under them."""
    said = " Together with: ".join(
        f"{requirement_words(policy, t.requirement)}: {t.text}" for t in contest.taken
    )
    under = "Under it" if len(contest.taken) == 1 else "Under these together"
    return f"{said} {under}: {VERDICT_WORDS[contest.decision]}."


UNITS = {"mo": "months", "a": "years", "d": "days", "wk": "weeks"}
"""How a UCUM unit of a number field is said in words."""

NEEDS_WORDS = {
    "eq": "",
    "ne": "not ",
    "ge": "at least ",
    "gt": "more than ",
    "le": "at most ",
    "lt": "less than ",
}


def value_words(field: Field, value: Value | None) -> str:
    """A field's value as a letter says it: `4 months`, `yes`, `moderate`, `not known`."""
    if value is None:
        return "not known"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if field.unit and not isinstance(value, str):
        return f"{show(value)} {UNITS.get(field.unit, field.unit)}"
    return show(value)


def conflict_words(conflict: Conflict, rules: RuleSet) -> str:
    """A field whose sources disagree, as a clinician is told it: what each source says, and
    the question that settles it."""
    field = rules.fields[conflict.field]
    said = "; ".join(f"{source_words(s)}: {value_words(field, s.value)}" for s in conflict.values)
    return (
        f"The sources disagree on {lower_first(field.name)}: {said}. Which is right for this "
        "procedure? Until it is settled, it is unknown for the decision."
    )


def source_words(stated: Stated) -> str:
    """Where a value came from, with its date: `the ARP 60 answers of 2021-03-04`, `the EHR
    (administrative gender)`."""
    return f"{stated.source}{f' of {stated.date[:10]}' if stated.date else ''}"


def confirm_words(values: Sequence[Stated], rules: RuleSet) -> str:
    """Values no one confirmed for this referral, each with where it came from, for "first
    confirm …": `sex (female, from the answers pre-filled from the EHR)`."""
    return " and ".join(
        f"{lower_first(rules.fields[s.field].name)} ({value_words(rules.fields[s.field], s.value)}, "
        f"from {source_words(s)})"
        for s in values
    )


def filled_words(stated: Stated, rules: RuleSet) -> str:
    """A value the clinical system's record or an older form gave, which no answer given for
    this referral did."""
    field = rules.fields[stated.field]
    given = {
        "earlier": "given on an earlier form and not confirmed since",
        "prefilled": "no one changed or confirmed it",
        "shared": "given on the form for every procedure, it may be about another joint",
    }.get(stated.kind, "no answer gave it")
    return (
        f"{field.name}: {value_words(field, stated.value)}, from {source_words(stated)}; {given}. "
        "Check it is right for this procedure."
    )


def evidence_words(evidence: Evidence, rules: RuleSet) -> str:
    """`Conservative care: 4 months; the policy needs at least 6 months` (no field paths)."""
    field = rules.fields[evidence.field]
    needs = NEEDS_WORDS[evidence.test.op] + value_words(field, evidence.test.value)
    return f"{field.name}: {value_words(field, evidence.value)}; the policy needs {needs}"


class Marks(frozenset[str]):
    """The requirements whose sentences a contest reads otherwise, and those of them that sit in
    the tree more than once (SFI under C2 and under C4)."""

    repeated: frozenset[str] = frozenset()


def leads_to(node: Node, marked: Collection[str]) -> bool:
    """Whether `node` or a node below it is flagged: such a node is never folded away."""
    return bool(marked) and any(flags(n, marked) for n in node.walk())


def flags(node: Node, marked: Collection[str]) -> bool:
    """Whether the tree marks `node` ⚑: a reading of its sentence changes the decision. Where the
    requirement sits in the tree more than once, only where it is a reason for its parent's
    status (SFI under a C2 that fails for its instability is not: however SFI is read, C2
    fails)."""
    return node.id in marked and (node.reason or node.id not in getattr(marked, "repeated", ()))


def marked(decision: Decision) -> Marks:
    """The requirements whose sentences a contest reads otherwise (⚑ in every tree)."""
    ids = [n.id for n in decision.tree.walk()]
    marks = Marks(r for c in decision.contested for r in c.requirements)
    marks.repeated = frozenset(r for r in marks if ids.count(r) > 1)
    return marks


def cannot_words(answer: WhatIf, rules: RuleSet) -> str:
    """Why no change can make the patient eligible, as honest as the readings allow: a procedure
    that does not suit the patient is said so (and what is indicated instead); otherwise it is
    said of the adopted reading (what-if searches that one: a change under another reading could
    still fund), with the ICB to ask where a reading already decides otherwise."""
    assert answer.blocker is not None
    blocker, policy = answer.blocker, answer.policy
    fixed = ", ".join(
        f"{lower_first(rules.fields[f].name)} is {value_words(rules.fields[f], v)}" for f, v in blocker.fixed
    )
    urgent = answer.urgent
    # a route the patient may meet (find out): explain's urgent line, which a standalone what-if
    # has nowhere else (a route met is worded in each branch below)
    maybe = (
        f" ⚠ {urgent_note(answer.decided)}"
        if urgent and urgent["status"] != "met" and answer.withheld is None and answer.decided is not None
        else ""
    )
    if blocker.to_confirm:  # in the way only on values no one confirmed: never a fact, confirm first
        return (
            f"{blocker.label} ({blocker.requirement}) is not met, and whether anything could change that "
            f"rests on values no one has confirmed for this referral: first confirm "
            f"{confirm_words(blocker.to_confirm, rules)}. No change to the record is offered meanwhile"
            + (
                f"; if it holds: {policy.unsuitable[blocker.requirement]}"
                if blocker.requirement in policy.unsuitable
                else "."
            )
            + (  # the urgent line as explain says it (the value recorded, both branches, the step first)
                f" ⚠ {urgent_note(answer.decided)}"
                if urgent and urgent["status"] == "met" and answer.decided is not None
                else f" ⚠ The patient meets an urgent route ({urgent['route']}): confirm it now."
                if urgent and urgent["status"] == "met"
                else maybe
            )
        )
    if blocker.requirement in policy.unsuitable:
        return (
            f"This procedure is not for the patient: {blocker.label} ({blocker.requirement}) is not met"
            f"{f' ({fixed})' if fixed else ''}, and no change is offered toward it. "
            f"{policy.unsuitable[blocker.requirement]}"
            + (
                f" ⚠ The patient meets an urgent route ({urgent['route']})"
                + (
                    ", on values no one has confirmed — first confirm "
                    f"{', '.join(lower_first(rules.fields[f].name) for f in urgent['to_confirm'])}; "
                    "if they hold,"
                    if urgent.get("to_confirm")
                    else ":"
                )
                + " the urgency stands for whatever procedure is indicated instead; do not let it wait."
                if urgent and urgent["status"] == "met"
                else maybe
            )
        )
    because = f": {fixed}, which cannot change" if fixed else ""
    cannot = f"{blocker.label} ({blocker.requirement}) cannot be met{because}."
    said = f"Under the adopted reading no change to the record can make the patient eligible: {cannot}"
    if not answer.robust:
        settle = settle_words(answer, rules)
        said += " Another reading of the policy decides otherwise (see below): " + (
            f"{settle} (find out first); if the reading stays open, ask the ICB."
            if settle
            else "ask the ICB."
        )
    return said + maybe


def certain_words(answer: WhatIf, rules: RuleSet) -> str:
    """What makes an eligibility that rests on the adopted reading certain: the answers that could
    settle the reading, as explain and the page list them (`to_settle`); only when there are none,
    that no change to the record does and the ICB must confirm the reading."""
    unconfirmed = getattr(answer, "unconfirmed", ())
    if unconfirmed:
        return (
            f"Eligible only on values no one has confirmed for this referral: first confirm "
            f"{confirm_words(unconfirmed, rules)}. If they hold, nothing needs to change."
        )
    settle = settle_words(answer, rules)
    if settle:
        return (
            f"Eligible on the adopted reading only; {settle} (find out first); if the reading stays "
            "open, ask the ICB to confirm it."
        )
    return (
        "Eligible on the adopted reading only; no change to the record makes it certain: "
        "ask the ICB to confirm the reading."
    )


def resting_words(answer: WhatIf, rules: RuleSet) -> str | None:
    """What every change offered rests on too, that no one confirmed for this referral (a sex
    pre-filled from the EHR, an older form's knee compartments): none of the changes funds the
    patient were it wrong. None where nothing offered rests on such a value, or where each one
    is named with the change it concerns."""
    decided = answer.decided
    if not answer.counterfactuals or decided is None:
        return None
    named = {f for changes in answer.counterfactuals for c in changes for f in (c.field, *dict(c.unless))}
    # a value no one confirmed that a condition met as recorded tests (the sex, for 'not female'):
    # what the eligibility the changes reach would rest on
    policy = decided.policy
    changed = {c.field for changes in answer.counterfactuals for c in changes}

    def relied_on(node: Node) -> Iterator[str]:  # the conditions met under every part that is not
        for child in node.children:  # refuted, or that a change reaches into (a route refuted as
            test = policy.requirements[child.id].test  # the record stands, and left so by every
            if test is not None:  # change, is not what the eligibility they reach rests on)
                if child.status == "met":
                    yield test.field
            elif child.status != "not_met" or changed & set(policy.tested_below(child.id)):
                yield from relied_on(child)

    relied = set(relied_on(decided.tree))
    values = [s for s in decided.doubted if s.field not in named and s.field in relied]
    if not values:
        return None
    return (
        f"Each of these rests too on values no one has confirmed for this referral: first confirm "
        f"{confirm_words(values, rules)}."
    )


def settle_words(answer: WhatIf, rules: RuleSet) -> str | None:
    """The answers that could settle the reading, named (`6 answers could settle the reading:
    pain, pain persistent, …`); None when no answer can."""
    if not answer.to_settle:
        return None
    count = len(answer.to_settle)
    names = ", ".join(lower_first(rules.fields[f].name) for f in answer.to_settle)
    return f"{count} answer{'s' if count != 1 else ''} could settle the reading: {names}"


def withheld_words(answer: WhatIf, rules: RuleSet) -> str | None:
    """An urgent route's word on what-if: more care is not offered as a way to funding, and what
    to do first, as the urgent line says it (core.urgency), said in full here (a standalone
    what-if has no urgent line above it), every fact by its label. A route the patient would
    meet only in a set withheld (`find out`, `if met`): what it rests on, to find out first."""
    if answer.withheld is None:
        return None
    route, policy, decided = answer.withheld, answer.policy, answer.decided
    label = f"{route}: {lower_first(policy.requirements[route].label)}"
    sentence = f"“{policy.sentence(route)}”"
    wait = "no change that waits for more conservative care is offered"
    if answer.advice == "find out":
        unknown = _unknown_below(decided, route, rules) if decided is not None else []
        ask = (
            "; ".join(f"“{rules.fields[f].question}”" for f in unknown)
            or f"whether the patient meets {route}"
        )
        return (
            f"May meet an urgent route ({label}): {wait} where the patient would meet it — find out "
            f"now {ask}; if the answer{'s meet' if len(unknown) > 1 else ' meets'} {route}, ask the ICB "
            f"now, without waiting for more care. {sentence}"
        )
    if answer.advice == "if met":
        return (
            f"Would meet an urgent route ({label}) only were a finding otherwise: {wait} where the "
            f"patient would meet it — should the patient come to meet {route}, ask the ICB now, "
            f"without waiting for more care. {sentence}"
        )
    first = {
        "assess": "first give the care the policy asks under every reading (below)",
        "settle": "settle what is still open now",
        "refused": "this procedure is refused on another requirement whatever the ICB is asked (see above)",
    }.get(answer.advice or "", "ask the ICB now")
    if answer.advice == "confirm":
        first = _confirm_first(decided, route, rules) if decided else "first confirm the facts"
    refused = refused_beside(decided, _cautioned(policy, route)) if decided is not None else []
    if answer.advice == "refused" and refused and decided is not None:  # named: nothing above
        shaky = [s for s in route_doubts(decided, route) if s not in decided.unconfirmed]
        unsure = confirm_words([*decided.unconfirmed, *shaky], rules)  # the refusal or route on them
        first = (
            f"{f'first confirm {unsure}; if it holds, ' if unsure else ''}this procedure is refused "
            f"whatever the ICB is asked: {_not_met_anyway(refused)}"
        )
    return f"Meets an urgent route ({label}): {wait} — {first}. {sentence}"


def _then_ask(decision: Decision) -> str:
    """What an urgent route asks once what it rests on holds: the care the policy asks under every
    reading first (an MSK assessment, `care_steps`), then the ICB."""
    steps = "; ".join(lower_first(n.label) for n in care_steps(decision))
    if steps:
        return f"first, now: {steps}; then ask the ICB, without waiting for more care"
    # (eligible as it stands: the referral itself is what must not wait)
    return (
        "refer without delay"
        if decision.decision == "eligible"
        else "ask the ICB now, without waiting for more care"
    )


def _not_met_anyway(refused: Sequence[Node]) -> str:
    """The requirements beside the one an urgent route cautions about that no reading meets
    (`refused_beside`): `A (…) is not met under any reading`."""
    failed = "; ".join(f"{n.id} ({lower_first(n.label)})" for n in refused)
    return f"{failed} {'is' if len(refused) == 1 else 'are'} not met under any reading"


def _confirm_first(decision: Decision, route: str, rules: RuleSet) -> str:
    """What an urgent route's `confirm` asks first, each fact by its label: whether the procedure
    suits the patient (unsuitable/3: not known, sources that disagree, or known only from a
    source no one confirmed), then what the route itself rests on that no one confirmed."""
    policy = decision.policy
    nodes = {n.id: n for n in decision.tree.walk()}
    doubted = unconfirmed_sources(decision)
    disputed = {c.field for c in decision.disputed}
    suits = []
    for rid in policy.unsuitable:
        node, fields = nodes.get(rid), policy.tested_below(rid)
        if node is None:
            continue
        values = [s for s in doubted if s.field in fields]
        if node.status == "unknown":
            state = "the sources disagree" if disputed & set(fields) else "not known"
            names = " and ".join(lower_first(rules.fields[f].name) for f in fields)
            suits.append(f"{names} ({state}; {lower_first(node.label)})")
        elif values:
            suits.append(f"{confirm_words(values, rules)} ({lower_first(node.label)})")
    doubts = route_doubts(decision, route)
    if not suits:
        facts = confirm_words(doubts, rules) or "what the urgency rests on"
        return f"first confirm {facts}; if it holds, {_then_ask(decision)}"
    also = f", and what the urgency rests on: {confirm_words(doubts, rules)}" if doubts else ""
    return f"first confirm {'; '.join(suits)}{also}; if the procedure suits the patient, ask the ICB now"


def _unknown_below(decision: Decision, route: str, rules: RuleSet) -> list[str]:
    """The fields of the conditions under an urgent route that are not known, in field order."""
    status = {n.id: n.status for n in decision.tree.walk()}
    tested = {
        r.test.field
        for r in decision.policy.below(route)
        if r.test is not None and status.get(r.id) == "unknown"
    }
    return [f for f in rules.fields if f in tested]


def steps_words(answer: WhatIf, rules: RuleSet) -> str | None:
    """The care a clinician can act on meanwhile (an MSK assessment not yet made)."""
    if not answer.steps:
        return None
    return "Meanwhile, a step you can take: " + "; ".join(change_words(c, rules) for c in answer.steps) + "."


def set_words(changes: Sequence[Change], rules: RuleSet) -> list[tuple[str, bool]]:
    """The clauses of one what-if set (`change_words`), each with whether it carries a caution:
    a route's caution is said in full once a set, on the first change it concerns."""
    said: set[str] = set()
    clauses = []
    for change in changes:
        first = change.caution is not None and change.caution.route not in said
        if change.caution is not None:
            said.add(change.caution.route)
        clauses.append((change_words(change, rules, caution=first), change.caution is not None))
    return clauses


def change_words(change: Change, rules: RuleSet, caution: bool = True) -> str:
    """One change of a what-if set, as a clause after "eligible if": an unknown as a question to
    find out, care as a step, a finding or an outcome as a condition (never an instruction);
    with the policy's own caution when a route the patient meets says not to wait (`caution`
    False: said already for this set, named only)."""
    field = rules.fields[change.field]
    name = lower_first(field.name)
    after = value_words(field, change.after)
    before = value_words(field, change.before)
    if change.kind == "answer":
        said = f"you find out “{field.question}” and the answer is {after}"
    elif change.kind in ("finding", "outcome"):
        what = "a clinical finding" if change.kind == "finding" else "an outcome of care"
        # a yes/no field is named, then answered ("… failed to improve the symptoms: yes"); a
        # grade or number reads as a condition ("pain were severe")
        said = f"{name}: {after}" if field.type == "bool" else f"{name} were {after}"
        said += f" (now {before}; {what}, not a step to take)"
    else:
        said = f"{name} went from {before} to {after} (care you can act on)"
    recorded = {s.field: s for s in change.doubted}
    for guard, value in change.unless:
        spec = rules.fields[guard]
        said += f" — only if the answer to “{spec.question}” is not {value_words(spec, value)}: " + (
            f"recorded as {value_words(spec, recorded[guard].value)}, known only from "
            f"{source_words(recorded[guard])}, so confirm it first"
            if guard in recorded
            else "it is not known yet, so find out first"
        )
    if change.caution is not None and caution:
        route = change.caution
        meets = f"meets {route.route}" if route.met else f"may meet {route.route} (not yet known)"
        said += (
            f" ⚠ Caution: the patient {meets}: “{route.text}” Do not delay the referral for this "
            "without asking the ICB"
        )
    elif change.caution is not None:
        said += f" ⚠ (the caution about {change.caution.route} above)"
    return said


def route_doubt_words(decision: Decision, route: str) -> str:
    """The values no one confirmed that an urgent route rests on: `conservative management
    contra-indicated — known only from the answers pre-filled from the EHR`."""
    return known_only(decision, route_doubts(decision, route))


def known_only(decision: Decision, values: Iterable[Stated]) -> str:
    """Values no one confirmed, each with where it came from: `end-stage osteoarthritis
    diagnosed by MSK Services — known only from the answers pre-filled from the EHR`."""
    return "; ".join(f"{_field(decision, s.field)} — known only from {source_words(s)}" for s in values)


def unconfirmed_suitability(decision: Decision) -> list[str]:
    """In words, what says whether the procedure suits the patient at all (unsuitable/3) and is
    not confirmed: not known, or known only from the EHR's administrative record or an older
    form."""
    policy = decision.policy
    nodes = {n.id: n for n in decision.tree.walk()}
    unconfirmed = unconfirmed_sources(decision)
    said = []
    for rid in policy.unsuitable:
        node = nodes.get(rid)
        fields = set(policy.tested_below(rid))
        values = [s for s in unconfirmed if s.field in fields]
        if node is not None and node.status == "unknown":  # not known, or sources that disagree: each
            clashes = "".join(
                f" — the sources disagree on {_field(decision, c.field)}: "
                + "; ".join(f"{_said(s.value)} in {source_words(s)}" for s in c.values)
                for c in decision.conflicts
                if c.field in fields
            )
            said.append(lower_first(node.label) + clashes)
        elif node is not None and values:  # the value recorded, where from, and what it is for
            given = " and ".join(
                f"{_field(decision, s.field)} {_said(s.value)}, known only from {source_words(s)}"
                for s in values
            )
            verdict = "not met as recorded" if node.status == "not_met" else "met as recorded"
            said.append(f"{given}: {lower_first(node.label)}, {verdict}")
    return said


def urgent_note(decision: Decision) -> str | None:
    """The urgent route's note (`urgent_route`), the first thing to say, before any question,
    its action before the policy's sentence."""
    urgent = urgent_route(decision)
    if urgent is None:
        return None
    node, advice = urgent
    route, policy = node.id, decision.policy
    met = f"Meets an urgent route ({route}: {lower_first(node.label)})"
    if advice == "unsuitable":
        doubts = route_doubt_words(decision, route)
        if doubts:  # the urgency itself rests on values no one confirmed: those first
            return (
                f"{met}, on a value no one has confirmed — first confirm {doubts}. If it holds, the "
                "urgency stands for whatever procedure is indicated instead: this procedure is not "
                "suitable for the patient (see below), so do not refer for it."
            )
        return (
            f"{met}, but this procedure is not suitable for the patient (see below): do not refer "
            "for it; the urgency stands for whatever procedure is indicated instead."
        )
    if advice == "confirm":
        first = "; ".join(unconfirmed_suitability(decision))
        then = _then_ask(decision)
        if not first:  # the route itself rests on a value no one confirmed for this referral
            doubts = route_doubt_words(decision, route)
            return f"{met}, on a value no one has confirmed — first confirm {doubts}. If it holds, {then}."
        doubts = route_doubt_words(decision, route)  # and the route's own facts no one confirmed
        also = f" Confirm too what the urgency rests on: {doubts}." if doubts else ""
        recorded = {n.status for n in decision.tree.walk() if n.id in policy.unsuitable}
        otherwise = (  # as recorded (or as a source says) it does not suit: what the urgency asks then
            " If it does not (as recorded), the urgency stands for whatever procedure is indicated "
            "instead: do not let it wait."
            if "not_met" in recorded
            else " If it does not, the urgency stands for whatever procedure is indicated instead: do not "
            "let it wait."
            if "unknown" in recorded
            else ""
        )
        return (
            f"{met} — first confirm the procedure suits the patient ({first}): it is not for every "
            f"patient.{also} If it does, {then}.{otherwise}"
        )
    # a verdict resting on values no one confirmed: those first, whatever the action
    unsure = known_only(decision, decision.unconfirmed)
    first = f"first confirm {unsure}; if it holds, " if unsure else ""
    if advice == "refer":
        return f"{met} — {first}refer without delay. “{policy.sentence(route)}”"
    if advice == "refused":
        refused = refused_beside(decision, _cautioned(policy, route))
        shaky = [s for s in route_doubts(decision, route) if s not in decision.unconfirmed]
        unsure = known_only(decision, [*decision.unconfirmed, *shaky])  # the route's own facts too
        first = f"first confirm {unsure}; if it holds, " if unsure else ""
        return (
            f"{met} — {first}{_not_met_anyway(refused)}: this procedure is refused whatever the ICB "
            "is asked. The urgency stands for the care indicated instead (or an Individual Funding "
            "Request where the ICB allows one)."
        )
    if advice == "assess":
        first = "; ".join(lower_first(n.label) for n in care_steps(decision))
        return (
            f"{met} — first, now: {first} (not yet done, or not known to be; the policy asks it under "
            "every reading). "
            f"Then ask the ICB without waiting for more care. “{policy.sentence(route)}”"
        )
    if advice == "find out":
        disputed = [c.field for c in decision.conflicts if c.field in policy.tested_below(route)]
        unknown = "; ".join(  # (a part not known only as the sources disagree on it: said once, so)
            lower_first(c.label)
            for c in node.children
            if c.status == "unknown" and not set(policy.tested_below(c.id)) <= set(disputed)
        )
        if disputed:  # the sources disagree on what it tests
            clash = "the sources disagree on " + "; ".join(_field(decision, f) for f in disputed)
            unknown = "; ".join(filter(None, [unknown, clash]))
        # (a part not met only on a value no one confirmed, core.urgency.as_confirmed: named)
        refuting = {f for c in node.children if c.status == "not_met" for f in policy.tested_below(c.id)}
        to_confirm = "; ".join(
            f"{_field(decision, s.field)} {_said(s.value)}, known only from {source_words(s)}"
            for s in route_doubts(decision, route)
            if s.field in refuting
        )
        found = "; ".join(
            [f"{unknown}: not yet known"] * bool(unknown) + [f"{to_confirm}: to confirm"] * bool(to_confirm)
        )
        then = (  # what it asks if met, as the patient stands
            "refer without delay"
            if decision.decision == "eligible"
            else "ask the ICB without waiting for more care"
        )
        refused = refused_beside(decision, _cautioned(policy, route))
        steps = "; ".join(lower_first(n.label) for n in care_steps(decision))
        suits = {n.status for n in decision.tree.walk() if n.id in policy.unsuitable}
        open_suit = "; ".join(unconfirmed_suitability(decision))  # resting on values no one confirmed
        if "not_met" in suits and not open_suit:
            then = "the urgency is for the procedure indicated instead: this one does not suit the patient"
        elif "not_met" in suits or "unknown" in suits or open_suit:  # (or met only as recorded)
            first = open_suit or "it is not for every patient"
            then = (
                f"first confirm the procedure suits the patient ({first}); "
                f"if it does, {then}; if it does not, the urgency is for the procedure indicated instead"
            )
        elif steps:
            then = f"first, now: {steps}; then {then}"
        elif refused:
            then = f"the urgency stands for the care indicated instead: {_not_met_anyway(refused)}"
        return (
            f"May meet an urgent route ({route}: {lower_first(node.label)}) — "
            f"find out now ({found}); if it is met, {then}."
        )
    if advice == "settle":
        return f"{met} — settle what is still open (below) now, without waiting. “{policy.sentence(route)}”"
    # what else the funding needs and no one knows yet (the MSK findings): to find out meanwhile
    cautioned = _cautioned(policy, route)
    beside = [c for c in decision.tree.children if c.id != cautioned and c.status == "unknown"]
    open_ = [
        lower_first(n.label) for c in beside for n in c.walk() if n.status == "unknown" and not n.children
    ]
    also = f" Find out now too: {'; '.join(open_)} (not yet known)." if open_ else ""
    return (
        f"{met} — ask the ICB now; do not delay the referral for conservative care.{also} "
        f"“{policy.sentence(route)}”"
    )


def _cautioned(policy: Policy, route: str) -> str:
    """The requirement an urgent route cautions against waiting for (caution/3: B for C6)."""
    return next(rid for rid, routes in policy.cautions.items() if route in routes)


def after_refusal(decision: Decision) -> str | None:
    """What follows a refusal: where a requirement refuses on clinical grounds (unsuitable/3:
    the procedure contra-indicated), what the policy's clinical text implies instead; else the
    commissioner's general route (an Individual Funding Request)."""
    if decision.decision != "not_eligible":
        return None
    return not_for_the_patient(decision) or decision.policy.recourse


def not_for_the_patient(decision: Decision) -> str | None:
    """Where a requirement refuses on clinical grounds (unsuitable/3: the procedure
    contra-indicated for the patient), what the policy's clinical text implies instead."""
    failed = {n.id for n in decision.tree.walk() if n.status == "not_met"}
    unsuitable = [text for rid, text in decision.policy.unsuitable.items() if rid in failed]
    return unsuitable[0] if unsuitable and decision.decision == "not_eligible" else None


def root_status(decision: Decision) -> str:
    """The words of the root's status: qualified, as the headline is, when the decision is not
    robust (`met on the adopted reading`), so that no line below a contested verdict reads plain."""
    words = {"met": "met", "not_met": "not met", "unknown": "unknown"}[decision.tree.status]
    if decision.robust:
        return words
    if decision.contested or decision.disputed:
        return f"⚑ {words} on the adopted reading"
    return f"⚑ {words} on a value to confirm"


CHANGE_KEY = (
    "care: what a clinician can act on; a clinical finding changes with the disease, and an "
    "outcome of care follows from the care: neither is a step to take"
)


def lower_first(text: str) -> str:
    """A term inside a sentence: `Conservative care` → `conservative care` (not `MSK …`)."""
    head = text.split(" ", 1)[0]
    return text if head.isupper() else text[:1].lower() + text[1:]


def _said(value: Value | None) -> str:
    """A source's value as a sentence names it: `female`, `8`, `yes`."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "no value" if value is None else show(value)


def urgent_summary(policy: str, urgent: Mapping[str, Any]) -> str | None:
    """A policy's urgent patients in a cohort, in one line (Summary.urgent_json), as the terminal
    and the cohort's page say it first; None for none."""
    if not urgent["meets"] and not urgent["may_meet"]:
        return None
    routes = ", ".join(
        f"{rid}: {n['meets']} meet{'s' if n['meets'] == 1 else ''}"
        + (f", {n['may_meet']} may meet" if n["may_meet"] else "")
        for rid, n in urgent["routes"].items()
    )
    actions = ", ".join(f"{action} {n}" for action, n in urgent["actions"].items())
    return (
        f"⚠ {policy}: {counted(urgent['meets'] + urgent['may_meet'], 'patient')} on an urgent route "
        f"the policy says not to wait for ({routes}; to do first: {actions}). Their lines name it "
        "(`urgent`): they must not wait behind the cohort's order."
    )
