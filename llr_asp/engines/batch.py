"""Cohorts: decisions for many patients, streamed in input order, on every core.

`iterate_decisions` is the API: patient documents in, one `Screening` per document and policy
it is decided for (or a `LineError` for a document that is not a valid patient), in input order:
without a policy asked for, a record that names its policy ("policy") is decided for that one
only, and a record that names none for every policy, as `explain` decides them. It holds only
a bounded number of documents in memory however long the input. The clingo programs are
screen.lp, explain's reasoning without the tree for a group of patients at once (decision,
requirements not met and the readings it rests on), and the completions of missing.lp
(reasoner.Answers), for the answers still to ask of an undetermined or contested one.
With jobs > 1, chunks of documents go to worker processes, each with its own groundings.
"""

from __future__ import annotations

import contextlib
import datetime
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol, Union

import clingo

from ..core.decision import Contest, Warning, reached, steady, warnings
from ..core.documents import Document, Numbered, for_procedure, to_patient
from ..core.errors import InputError, LlrError, NotInForce, UsageError, WorkerError
from ..core.patient import Patient
from ..core.reasoner import (
    GROUND_AFTER,
    Answers,
    Parts,
    PatientInput,
    Reasoner,
    barred,
    focus_key,
    focus_parts,
    forget,
    gathered_by_world,
    minimal,
)
from ..core.ruleset import Policy, RuleSet, compile_rules, engine_file
from ..core.shown import ShownAtoms
from ..core.urgency import Standing, doubted, urgent_json
from ..core.verdicts import SIZE, VerdictCache

CHUNK = 500  # documents per task: large enough to amortise the hand-over, small enough to stream
CACHE = SIZE  # screened profiles kept per process: patients whose fields fall alike share a solve


@dataclass(frozen=True)
class Screening:
    """What one policy decides for one patient of a cohort."""

    line: int
    patient: str
    policy: str
    reference: str
    decision: str
    failed: tuple[str, ...]  # every requirement not met, in tree order (parts of parts too)
    missing: tuple[str, ...]
    contested: tuple[Contest, ...] = ()  # clinical alternatives under which the decision differs
    warnings: tuple[Warning, ...] = ()  # domain assumptions the record contradicts
    open: tuple[str, ...] = ()  # parts of the decision root left unknown (for the summary's funnel)
    stopped_by: tuple[str, ...] = ()  # the parts of the decision root that refuse it or leave it open
    unnamed: bool = False  # the record named no policy and none was asked for: decided for every one
    edition: Mapping[str, str | None] | None = None  # the edition that decided (Policy.edition_json)
    under_unconfirmed: tuple[str, ...] = ()  # decisions reached were the unconfirmed values unknown
    urgent: Mapping[str, Any] | None = None  # the urgent route met or maybe met (Decision.urgent_json)

    @property
    def robust(self) -> bool:
        """As explain's (core.decision.steady): a line resting on a value no one confirmed (a
        form filler's pre-fill from the EHR) is not robust."""
        return steady(self.contested, under_unconfirmed=self.under_unconfirmed)

    @property
    def possible(self) -> tuple[str, ...]:
        return reached(self.decision, self.contested, self.under_unconfirmed)

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "patient": self.patient,
            "policy": self.policy,
            "reference": self.reference,
            "decision": self.decision,
            "urgent": self.urgent,
            "robust": self.robust,
            "possible": list(self.possible),
            "stopped_by": list(self.stopped_by),
            "failed": list(self.failed),
            "missing": list(self.missing),
            "contested": [c.to_json() for c in self.contested],
            "warnings": [w.to_json() for w in self.warnings],
            "edition": self.edition,
        }


@dataclass(frozen=True)
class Choice:
    """What a cohort's records are decided for: `selection` (a family or edition id, or "all";
    None: each record's own "policy", else every policy), each family by its edition in force
    on `as_of`, else on the record's date (decided_on/1), else today."""

    selection: str | None = None
    as_of: datetime.date | None = None
    editions: tuple[str, ...] = ()
    """Instead: exactly these editions (policy ids), every record, in this order (`diff --cohort`)."""


@dataclass(frozen=True)
class LineError:
    """An input line that is not a valid patient document, and why."""

    line: int
    error: str
    patient: str | None = None  # the record's id, where it could be read (Arrow output names it)

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "error": self.error}


Result = Union[Screening, LineError]


class Statuses(Mapping[str, str]):
    """Every requirement of a policy's tree and its status, read from a verdict's requirements
    not met and left unknown (the rest are met) as they are looked up: a line's urgency looks
    up a few, and a dict of them all cost a cohort line some 6 µs."""

    def __init__(self, tree: frozenset[str], not_met: frozenset[str], unknown: frozenset[str]) -> None:
        self._tree, self._not_met, self._unknown = tree, not_met, unknown

    def __getitem__(self, rid: str) -> str:
        if rid not in self._tree:
            raise KeyError(rid)
        return "not_met" if rid in self._not_met else "unknown" if rid in self._unknown else "met"

    def get(self, rid: str, default: Any = None) -> Any:  # Mapping's own goes through KeyError
        if rid not in self._tree:
            return default
        return "not_met" if rid in self._not_met else "unknown" if rid in self._unknown else "met"

    def __contains__(self, rid: object) -> bool:
        return rid in self._tree

    def __iter__(self) -> Iterator[str]:
        return iter(self._tree)

    def __len__(self) -> int:
        return len(self._tree)


class Verdict(NamedTuple):
    """What one policy decides for a profile (the patients clingo sees alike), as cached."""

    decision: str
    failed: tuple[str, ...]  # every requirement not met, in tree order
    missing: tuple[str, ...]
    contested: tuple[Contest, ...]
    warnings: tuple[Warning, ...]
    open: tuple[str, ...]  # the parts of the decision root left unknown
    stopped_by: tuple[str, ...]
    unknown: frozenset[str]  # every requirement left unknown, at any depth (for the statuses)

    def statuses(self, tree: frozenset[str]) -> Statuses:
        """Every requirement of the policy's tree (`tree`: their ids) and its status, as
        explain's tree holds them (Decision.statuses): what core.urgency reads."""
        return Statuses(tree, frozenset(self.failed), self.unknown)


DECIDE = ("kleene.lp", "readings.lp", "slots.lp", "screen.lp")
WEIGH = ("kleene.lp", "readings.lp", "contest.lp", "slots.lp")
"""The two groundings of a cohort's decisions: screen.lp decides a group of patients by
propagation alone; contest.lp weighs under the readings only the patients that no anchored
requirement refuses (one a requirement no reading touches, such as A: a robust refusal),
packed into groups of their own: about two patients in five of a random cohort."""
WEIGHED_TOGETHER = 2
"""The patients weighed in one solve of contest.lp (its `slots`). Unlike screen.lp, which
propagates, it enumerates models, and each model it finds is followed by a search over every
world of the group: its cost grows faster than the group. A cohort line of bench_batch.py's
cohort cost 3.23 M instructions with 16 together, 2.45 M with 2, and 1.76 M not weighed at all
(benchmarks/bench_instructions.py); on a cohort with every field known, 16 cost 3.62 M, 8
3.16 M, 4 2.94 M, 2 2.85 M and 1 2.86 M (one solve's fixed cost no longer shared)."""


class Screener:
    """Decides patients without building their trees. Not thread-safe: one per process.

    Three groundings: screen.lp decides a group of patients in one solve, each in a slot
    world of its own, and names the requirements not met; contest.lp weighs the readings of
    those that no anchored requirement refuses, WEIGHED_TOGETHER at a time; and only a patient
    that some policy leaves undetermined is solved again, alone, with missing.lp, whose
    completions cost several models. Externals are left free and each solve assumes the
    patients' values. The three are grounded for the policies a run can ask for (a lane:
    `-p hip-resurfacing` grounds and solves the hip editions alone), each lane with its verdict
    cache.
    """

    def __init__(self, rules: RuleSet, decide: clingo.Control) -> None:
        self.rules = rules
        self._every = frozenset(rules.policies)
        full = _Lane(rules, self._every, decide)
        self._lanes: OrderedDict[frozenset[str], _Lane] = OrderedDict({self._every: full})
        self._needs: dict[frozenset[str], int] = {}  # policies -> chunks asked of them so far
        self._anchored: dict[str, set[str]] = {}  # policy -> requirements no reading touches
        for atom in decide.symbolic_atoms.by_signature("anchored", 2):
            policy, rid = (a.string for a in atom.symbol.arguments)
            self._anchored.setdefault(policy, set()).add(rid)
        slot = {world: n for n, world in enumerate(full.slots.worlds)}  # world -> place in a group
        self._verdict_atoms = ShownAtoms(
            lambda s: (slot[s.arguments[0]], s.name, *map(_text, s.arguments[1:]))
        )
        self._order = {p.id: _first_places(r.id for r in p.below(p.root)) for p in rules.policies.values()}
        self._tree = {p: frozenset(order) for p, order in self._order.items()}  # for a line's statuses
        self._tested = {p.id: p.fields() for p in rules.policies.values()}
        self._fields = _first_places(rules.fields)
        self._chosen: dict[tuple[str | None, datetime.date | None], list[Policy]] = {}
        self._reasoner: Reasoner | None = None  # explain's, for the few lines resting on unconfirmed values

    def _under_unconfirmed(self, patient: Patient, policy: Policy) -> tuple[str, ...]:
        """The decisions the patient would reach were its values no one confirmed not known
        (Decision.under_unconfirmed, weighed by explain's reasoner: one place decides it); none
        for a record every answer of which is the clinician's, as nearly every cohort line is."""
        if not patient.filled or not doubted(policy, patient.filled):
            return ()
        if self._reasoner is None:
            self._reasoner = Reasoner(self.rules)
        [decision] = self._reasoner.decide(patient, [policy])
        return decision.under_unconfirmed

    def _lane(self, choice: Choice) -> _Lane:
        """The groundings for the policies `choice` can ask for (every policy when records name
        their own), grounded on first need (`reasoner.focus_key`)."""
        families = self.rules.families
        if choice.editions:
            wanted: Iterable[str] = choice.editions
        elif choice.selection in (None, "all"):
            wanted = self._every
        elif choice.selection in families:
            wanted = [p.id for p in families[choice.selection]]
        else:
            wanted = [choice.selection]
        key = focus_key(self._every, wanted)
        lane = self._lanes.get(key)
        if lane is not None:
            self._lanes.move_to_end(key)
            return lane
        self._needs[key] = needs = self._needs.get(key, 0) + 1
        if needs < GROUND_AFTER:  # a first chunk: every policy's grounding decides it alike
            return self._lanes[self._every]
        parts = focus_parts(self._every, key)
        decide = self.rules.ground(map(engine_file, DECIDE), parts)
        lane = self._lanes[key] = _Lane(self.rules, key, decide, parts)
        forget(self._lanes, self._every)
        return lane

    @classmethod
    def load(cls, directory: Path | None = None) -> Screener:
        return cls(*compile_rules(directory, map(engine_file, DECIDE)))

    def policies(
        self, selection: str | None, as_of: datetime.date | None = None, editions: tuple[str, ...] = ()
    ) -> Choice:
        """What every record is decided for: `selection`, a family or edition id or "all"; None
        for None: each record's own (its "policy"), else every policy (`Reasoner.chosen`), in
        the edition in force on `as_of`, else on the record's date, else today. UsageError for
        an unknown policy; NotInForce when `as_of` is given and no edition is in force then."""
        for edition in editions:
            if edition not in self.rules.policies:
                known = ", ".join(self.rules.policies)
                raise UsageError(f'unknown edition "{edition}"; choose one of {known}')
        self.rules.check_selection(selection, as_of)
        return Choice(selection, as_of, editions)

    def chosen(self, patient: Patient, choice: Choice) -> tuple[list[Policy], bool]:
        """The policies `patient` is decided for under `choice`, and whether it is every one
        only because nothing named one (`Screening.unnamed`)."""
        if choice.editions:
            return [self.rules.policies[e] for e in choice.editions], False
        day = choice.as_of or self.rules.date_of(patient.values)
        key = (choice.selection or patient.policy, day)
        found = self._chosen.get(key)
        if found is None:
            found = self._chosen[key] = self.rules.select(key[0], day)
        if choice.selection is not None:  # a response to one policy's questionnaire: that policy alone
            every = choice.selection == "all" or len(found) == len(self.rules.families)
            return for_procedure(patient, found, every=every), False
        # a form's answers for its own procedure alone, however it names it (its canonical, its
        # contained form, llr-asp's tag): "every policy" only for a record that names none
        own = for_procedure(patient, found, every=True)
        return own, patient.policy is None and patient.answers_for is None

    def screen(self, documents: Sequence[tuple[int, Document]], source: str, choice: Choice) -> list[Result]:
        """The results of each numbered document under each of the policies of `choice`, in
        order: with no selection, under the policy the record names, else under every policy
        (`Screening.unnamed`). The verdicts are those of every policy `choice` can ask for (each
        record's own under no selection: every policy), from groundings for those alone."""
        lane = self._lane(choice)
        read: list[tuple[int, Patient, tuple[int, ...]] | LineError] = []
        todo: dict[tuple[int, ...], tuple[Patient, list[int]]] = {}  # profiles not yet screened
        for line, document in documents:
            try:
                patient = to_patient(document, self.rules, f"{source}:{line}")
            except InputError as error:
                read.append(LineError(line, str(error), _id(document)))
                continue
            places = lane.slots.places(patient)
            key = tuple(sorted(places))  # what clingo sees of the patient
            read.append((line, patient, key))
            if lane.cache.get(key) is None and key not in todo:
                todo[key] = patient, places
        profiles = list(todo.items())
        size = len(lane.slots.worlds)
        screened: list[Screened] = []
        for start in range(0, len(profiles), size):
            screened += self._screened(lane, [places for _, (_, places) in profiles[start : start + size]])
        weigh = [(n, places) for n, (_, (_, places)) in enumerate(profiles) if self._unsettled(screened[n])]
        contested: dict[int, dict[str, tuple[Contest, ...]]] = {}
        for start in range(0, len(weigh), WEIGHED_TOGETHER):
            group = weigh[start : start + WEIGHED_TOGETHER]
            found = self._contests(lane, [places for _, places in group])
            contested.update((n, found.get(str(slot), {})) for slot, (n, _) in enumerate(group))
        for n, (key, (patient, _)) in enumerate(profiles):
            lane.cache.put(
                key, trim=False, verdict=self._verdicts(lane, patient, screened[n], contested.get(n, {}))
            )
        results: list[Result] = []
        for item in read:
            if isinstance(item, LineError):
                results.append(item)
                continue
            line, patient, key = item
            verdicts = lane.cache[key]
            try:
                asked, unnamed = self.chosen(patient, choice)
            except InputError as error:
                said = InputError(f"{source}:{line}", error.path, error.problem)
                results.append(LineError(line, str(said), patient.id))
                continue
            except NotInForce as error:
                results.append(LineError(line, f"{source}:{line}: {error}", patient.id))
                continue
            results += (self._screening(line, patient, p, verdicts[p.id], unnamed) for p in asked)
        lane.cache.trim()
        return results

    def _screening(
        self, line: int, patient: Patient, policy: Policy, verdict: Verdict, unnamed: bool
    ) -> Screening:
        """A line of the cohort: the profile's cached verdict, with what the record itself adds
        (its id, the values no one confirmed it rests on) and the urgent route, judged by
        core.urgency from every requirement's status as explain's is from its tree."""
        under = self._under_unconfirmed(patient, policy)
        standing = Standing(
            policy,
            verdict.decision,
            verdict.statuses(self._tree[policy.id]),
            reached(verdict.decision, verdict.contested, under),
            patient.filled,
            barred(self.rules, patient, self._tested[policy.id]),
            under,
        )
        return Screening(
            line,
            patient.id,
            policy.id,
            policy.reference,
            verdict.decision,
            verdict.failed,
            verdict.missing,
            verdict.contested,
            verdict.warnings,
            verdict.open,
            verdict.stopped_by,
            unnamed=unnamed,
            edition=policy.edition_json(self.rules.digest),
            under_unconfirmed=under,
            urgent=urgent_json(standing),
        )

    def _screened(self, lane: _Lane, group: list[list[int]]) -> list[Screened]:
        """Each patient's decisions, requirements not met and unknown, and violated assumptions,
        from one solve of screen.lp for the group."""
        policies = lane.policies
        screened = [Screened({}, {p: [] for p in policies}, {p: [] for p in policies}, []) for _ in group]
        shown: list[tuple[Any, ...]] = []
        lane.decide.solve(
            assumptions=lane.slots.assumptions(group),
            on_model=lambda m: shown.extend(self._verdict_atoms(m.symbols(shown=True))),
        )
        for slot, name, *args in shown:
            if slot >= len(group):  # a slot past the group holds nobody
                continue
            one = screened[slot]
            if name == "verdict":
                one.decided[args[0]] = args[1]
            elif name == "failed":
                one.failed[args[0]].append(args[1])
            elif name == "unknown":
                one.unknown[args[0]].append(args[1])
            else:
                one.violated.append(args[0])
        return screened

    def _unsettled(self, screened: Screened) -> bool:
        """Whether some policy's decision may rest on a reading: none refuses the patient for an
        anchored requirement (one no reading touches)."""
        return any(not self._anchored.get(p, set()) & set(failed) for p, failed in screened.failed.items())

    def _contests(self, lane: _Lane, group: list[list[int]]) -> dict[str, dict[str, tuple[Contest, ...]]]:
        """The contests of a group of patients, by slot (as text) and policy: the subset-minimal
        models of contest.lp (grounded on first need)."""
        if lane.weigh is None or lane.weighed is None:
            lane.weigh = self.rules.ground(
                map(engine_file, WEIGH), lane.parts, constants={"slots": WEIGHED_TOGETHER}
            )
            minimal(lane.weigh)
            lane.weighed = PatientInput(lane.weigh)
            lane.weighed.free()
        models: list[list[tuple[str, tuple[str, ...], str]]] = []

        def on_model(model: clingo.Model) -> None:
            atoms = self._verdict_atoms(model.symbols(shown=True))
            if atoms:
                models.append([(str(a[1]), (str(a[0]), *map(str, a[2:-1])), str(a[-1])) for a in atoms])

        lane.weigh.solve(assumptions=lane.weighed.assumptions(group), on_model=on_model)
        return gathered_by_world(self.rules, models)

    def _verdicts(
        self, lane: _Lane, patient: Patient, screened: Screened, contested: Mapping[str, tuple[Contest, ...]]
    ) -> dict[str, Verdict]:
        """A patient's verdict under every policy, with the missing answers of an undetermined
        decision (a solve of its own)."""
        policies = lane.policies
        missing: dict[str, list[str]] = {p: [] for p in policies}
        undetermined = {p for p, d in screened.decided.items() if d == "undetermined"}
        # every policy of the lane's, whichever a record asks for: verdicts are cached by profile. A cohort
        # line asks nothing (to_settle, the answers that could settle a reading, is next's
        # and ask's): only the missing answers of an undetermined decision are searched for.
        for _, key, field in lane.answers.find(patient, undetermined, {}, policies):
            missing[key[0]].append(field)
        warned = warnings(self.rules.assumptions, screened.violated) if screened.violated else ()
        verdicts = {}
        for p, policy in policies.items():
            unknown = frozenset(screened.unknown[p])
            root = policy.requirements[policy.root]
            left = tuple(r for r in root.parts if r in unknown)  # the parts of the root left open
            verdicts[p] = Verdict(
                screened.decided[p],
                tuple(sorted(screened.failed[p], key=self._order[p].__getitem__)),
                tuple(sorted(missing[p], key=self._fields.__getitem__)),
                contested.get(p, ()),
                warned,
                left,
                stopped_by(policy, screened.decided[p], screened.failed[p], left),
                unknown,
            )
        return verdicts


class _Lane:
    """A screener's groundings for some policies (`parts`: their focus; none: every policy), the
    answers still to ask under the same focus, and the verdicts of the profiles screened last."""

    def __init__(
        self, rules: RuleSet, focus: frozenset[str], decide: clingo.Control, parts: Parts = ()
    ) -> None:
        self.policies = {p: policy for p, policy in rules.policies.items() if p in focus}  # rules' order
        self.parts = parts
        self.decide = decide
        self.answers = Answers(rules, parts)
        self.slots = PatientInput(decide)
        # screen.lp is decided by propagation alone (no choice, no conflict): it learns no
        # lemma, and forgetting none still took a fifth of its solve
        decide.configuration.solver.forget_on_step = "0"  # type: ignore[union-attr]
        self.slots.free()
        self.weigh: clingo.Control | None = None  # contest.lp, grounded on first need
        self.weighed: PatientInput | None = None
        self.cache: VerdictCache[dict[str, Verdict]] = VerdictCache(CACHE)  # places -> verdicts


@dataclass
class Screened:
    """What screen.lp says of one patient: decisions, the requirements not met and left unknown
    (at any depth), by policy, and the domain assumptions the record contradicts."""

    decided: dict[str, str]
    failed: dict[str, list[str]]
    unknown: dict[str, list[str]]
    violated: list[str]


def stopped_by(
    policy: Policy, decision: str, not_met: Iterable[str], unknown: Iterable[str]
) -> tuple[str, ...]:
    """The requirements that are a reason for a refusal or an undetermined decision: the parts
    of the decision root (the root itself when it has none) whose status is the root's, in the
    policy's order; none for an eligible patient. `not_met` holds the requirements not met,
    `unknown` the parts of the root left unknown. (Decision.stopped_by, from a whole tree.)"""
    if decision == "eligible":
        return ()
    root = policy.requirements[policy.root]
    if not root.parts:
        return (root.id,)
    reasons = set(not_met) if decision == "not_eligible" else set(unknown)
    return tuple(r for r in root.parts if r in reasons)


def _id(document: Document) -> str | None:
    """The id a parsed document gives, if any (JSON text is not parsed again for it)."""
    name = document.get("id") if isinstance(document, Mapping) else None
    return name if isinstance(name, str) else None


def _text(symbol: clingo.Symbol) -> str:
    """A policy, requirement, reading or assumption id (a string) or a decision (a constant)
    as text."""
    return symbol.string if symbol.type == clingo.SymbolType.String else symbol.name


def _first_places(ids: Iterable[str]) -> dict[str, int]:
    """Each id's place at its first occurrence (a requirement may sit under two parents)."""
    places: dict[str, int] = {}
    for rid in ids:
        places.setdefault(rid, len(places))
    return places


def iterate_decisions(
    documents: Iterable[Document | tuple[int, Document]],
    policy: str | None = None,
    rules: Path | None = None,
    jobs: int = 1,
    source: str = "batch",
    as_of: datetime.date | None = None,
) -> Generator[Result, None, None]:
    """Decide every document (a patient dict or its JSON text), in order, for each policy it
    is decided for.

    Items may be (line, document) pairs; otherwise they are numbered from 1. A document that
    is not a valid patient yields one `LineError` and the run goes on. `jobs` > 1 uses that
    many worker processes; closing the generator before its end (or an exception in it) stops
    them at once. `policy`: a policy id or "all", for every document; None (the default,
    as `explain`'s): the policy a document names, else every policy. Of a family, the edition
    in force on `as_of`, else on the document's date (decided_on/1), else today.
    """
    numbered = (item if isinstance(item, tuple) else (n, item) for n, item in enumerate(documents, 1))
    yield from decide_chunks(chunks(numbered, CHUNK), policy, rules, jobs, source, as_of)


class Rows(Protocol):
    """A chunk of input rows that becomes numbered documents where it is screened (in a worker):
    Arrow record batches are handed over far more cheaply than the documents they make."""

    def documents(self, rules: RuleSet) -> list[Numbered]: ...


Chunk = Union[list[Numbered], Rows]


def decide_chunks(
    pieces: Iterable[Chunk],
    policy: str | None = None,
    rules: Path | None = None,
    jobs: int = 1,
    source: str = "batch",
    as_of: datetime.date | None = None,
    editions: tuple[str, ...] = (),
) -> Generator[Result, None, None]:
    """`iterate_decisions` over chunks of numbered documents (of at most CHUNK each), or of rows
    that a worker reads into documents itself. Closed before its end (or failing), it stops
    its workers at once."""
    if jobs <= 1:
        screener = Screener.load(rules)
        chosen = screener.policies(policy, as_of, editions)
        for chunk in pieces:
            yield from screener.screen(_documents(chunk, screener.rules), source, chosen)
        return
    Screener.load(rules).policies(
        policy, as_of, editions
    )  # unusable rules or policy: fail here, not in a worker
    context = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    )
    pool = ProcessPoolExecutor(
        jobs,
        context,
        initializer=_start_worker,
        initargs=(rules, policy, as_of, editions, source, os.getpid()),
    )
    finished = False
    try:
        pending: deque[Future[list[Result]]] = deque()
        for chunk in pieces:
            with _no_interrupt_in_a_new_worker():
                pending.append(pool.submit(_screen_chunk, chunk))
            if len(pending) >= 2 * jobs:  # bounded: memory stays flat however long the input
                yield from _results(pending.popleft())
        while pending:
            yield from _results(pending.popleft())
        finished = True
    finally:  # done, failed, interrupted or closed early: no chunk is started after this
        workers = list((pool._processes or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        if not finished:  # nothing a worker is doing is wanted any more
            for worker in workers:
                worker.terminate()


@contextlib.contextmanager
def _no_interrupt_in_a_new_worker() -> Iterator[None]:
    """Ctrl-C held back from a worker process forked meanwhile, until it ignores it (_start_worker):
    a worker interrupted while it starts would print its traceback. The main process gets the
    signal once the block ends."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _results(future: Future[list[Result]]) -> list[Result]:
    """A worker's results; a worker that died or failed stops the run with a WorkerError."""
    try:
        return future.result()
    except BrokenProcessPool:
        raise WorkerError(
            "a batch worker process died (out of memory, or killed); the run is stopped and its "
            "output incomplete; try again, or with fewer --jobs"
        ) from None
    except LlrError:
        raise
    except Exception as error:  # a fault in a worker: say what, without a traceback
        raise WorkerError(
            f"a batch worker failed ({type(error).__name__}: {error}); the run is stopped"
        ) from None


def chunks(items: Iterable[tuple[int, Document]], size: int) -> Iterator[list[tuple[int, Document]]]:
    chunk: list[tuple[int, Document]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


_worker: tuple[Screener, Choice, str] | None = None


def _start_worker(
    rules: Path | None,
    policy: str | None,
    as_of: datetime.date | None,
    editions: tuple[str, ...],
    source: str,
    parent: int,
) -> None:
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    threading.Thread(target=_end_with, args=(parent,), daemon=True).start()
    screener = Screener.load(rules)
    _worker = (screener, screener.policies(policy, as_of, editions), source)


def _end_with(parent: int) -> None:
    """A worker ends when the process that started it has (killed, or gone without waiting):
    never an orphan left computing."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _screen_chunk(chunk: Chunk) -> list[Result]:
    assert _worker is not None
    screener, chosen, source = _worker
    return screener.screen(_documents(chunk, screener.rules), source, chosen)


def _documents(chunk: Chunk, rules: RuleSet) -> list[Numbered]:
    return chunk if isinstance(chunk, list) else chunk.documents(rules)


def default_jobs() -> int:
    """Every core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Summary:
    """What a run found: decisions per policy, the patients on an urgent route (meeting it or
    maybe meeting it, by route and by the action it asks first: counts only, no one named), the
    requirements that stopped patients (the sum of
    the lines' `stopped_by`), the requirements most often not met at any depth, the funnel
    (how many patients pass each part of the decision, in the policy's order, how many it stops
    and how many it leaves open), the fields most often missing, how many patients each contested
    reading decides, the records that contradict a domain assumption, and the bad lines. Each
    policy's figures count the patients decided for it only; `unnamed` counts the records that
    named no policy and were decided for every policy (none asked for)."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self.decisions: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.stopped_by: defaultdict[str, Counter[str]] = defaultdict(Counter)  # lines' stopped_by
        self.failed: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.missing: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.contested: defaultdict[str, Counter[tuple[str, str]]] = defaultdict(Counter)  # (readings, alts)
        self.warnings: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.urgent: defaultdict[str, Counter[tuple[str, str, str]]] = defaultdict(
            Counter
        )  # (route, status, action)
        self.funnel: defaultdict[str, defaultdict[str, Counter[str]]] = defaultdict(
            lambda: defaultdict(Counter)
        )  # policy -> step -> met, not_met, unknown, refused_later (unknown, then refused)
        self.errors: list[LineError] = []
        self.error_count = 0
        self.unnamed = 0  # records decided for every policy because they named none
        self._unnamed_line: int | None = None

    def add(self, result: Result) -> None:
        if isinstance(result, LineError):
            self.error_count += 1
            if len(self.errors) < 20:
                self.errors.append(result)
            return
        if result.unnamed and result.line != self._unnamed_line:  # a record's lines come together
            self.unnamed += 1
            self._unnamed_line = result.line
        self.decisions[result.policy][result.decision] += 1
        self.stopped_by[result.policy].update(result.stopped_by)
        self.failed[result.policy].update(result.failed)
        if result.missing:
            self.missing[result.policy].update(result.missing)
        for contest in result.contested:
            self.contested[result.policy][contest.label(), contest.described()] += 1
        for warning in result.warnings:
            self.warnings[result.policy][warning.assumption] += 1
        if result.urgent is not None:
            urgent = result.urgent
            self.urgent[result.policy][urgent["route"], urgent["status"], urgent["action"]] += 1
        self._through(result)

    def policies(self) -> list[str]:
        """The policies some patient was decided for, in the rule set's order (not the order a
        mixed cohort first named them in)."""
        return [p for p in self.rules.policies if p in self.decisions]

    def steps(self, policy: str) -> tuple[str, ...]:
        """The steps of a policy's funnel: the parts of its decision root in the order the policy
        lists them (the root itself, when it is not all-of)."""
        declared = self.rules.policies[policy]
        root = declared.requirements[declared.root]
        return root.parts if root.form == "all_of" else (root.id,)

    def _through(self, result: Screening) -> None:
        """Count the patient at each step it reaches: passed (met), stopped (not met) or left
        open (unknown; counted apart, and as refused later when a later step refuses them)."""
        root = self.rules.policies[result.policy].root
        for step in self.steps(result.policy):
            if step == root:
                status = {"eligible": "met", "not_eligible": "not_met"}.get(result.decision, "unknown")
            else:
                status = "not_met" if step in result.failed else "unknown" if step in result.open else "met"
            counts = self.funnel[result.policy][step]
            counts[status] += 1
            if status == "unknown" and result.decision == "not_eligible":
                counts["refused_later"] += 1
            if status != "met":
                return

    def urgent_json(self, policy: str) -> dict[str, Any]:
        """The policy's patients on an urgent route: how many meet one (`meets`) and how many may
        (`may_meet`: some of it met, the rest not known), by route in the policy's order and by
        the action each asks first (core.urgency), most common first."""
        counts = self.urgent[policy]
        routes: dict[str, dict[str, int]] = {}
        for rid in self._order(policy):
            met = sum(n for (r, status, _), n in counts.items() if r == rid and status == "met")
            maybe = sum(n for (r, status, _), n in counts.items() if r == rid and status != "met")
            if met or maybe:
                routes[rid] = {"meets": met, "may_meet": maybe}
        actions: Counter[str] = Counter()
        for (_, _, action), n in counts.items():
            actions[action] += n
        return {
            "meets": sum(r["meets"] for r in routes.values()),
            "may_meet": sum(r["may_meet"] for r in routes.values()),
            "routes": routes,
            "actions": dict(actions.most_common()),
        }

    def _order(self, policy: str) -> list[str]:
        declared = self.rules.policies[policy]
        return list(dict.fromkeys(r.id for r in declared.below(declared.root)))

    def funnel_json(self, policy: str) -> list[dict[str, Any]]:
        requirements = self.rules.policies[policy].requirements
        steps = []
        for step in self.steps(policy):
            counts = self.funnel[policy][step]
            reached = counts["met"] + counts["not_met"] + counts["unknown"]
            steps.append(
                {
                    "requirement": step,
                    "label": requirements[step].label,
                    "reached": reached,
                    "met": counts["met"],
                    "not_met": counts["not_met"],
                    "unknown": counts["unknown"],
                    "unknown_refused_later": counts["refused_later"],
                }
            )
        return steps

    def to_json(self) -> dict[str, Any]:
        return {
            "errors": self.error_count,
            "first_errors": [e.to_json() for e in self.errors],
            "unnamed_decided_for_every_policy": self.unnamed,
            "policies": {
                p: {
                    "reference": self.rules.policies[p].reference,
                    "decisions": dict(self.decisions[p]),
                    "urgent": self.urgent_json(p),
                    "stopped_by": dict(self.stopped_by[p].most_common()),
                    "most_failed": self.failed[p].most_common(10),
                    "most_missing": self.missing[p].most_common(10),
                    "contested": [
                        {"reading": reading, "alternative": alternative, "patients": count}
                        for (reading, alternative), count in self.contested[p].most_common()
                    ],
                    "warnings": dict(self.warnings[p]),
                    "funnel": self.funnel_json(p),
                }
                for p in self.policies()
            },
        }
