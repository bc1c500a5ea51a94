"""Loading a rule set: the policies, requirement trees and input fields declared in `.lp` files.

Everything here is read from the rules; no policy, requirement or field is named in Python.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import clingo

from .errors import DeclarationError, NotInForce, RuleError, UsageError, printable

Value = Union[bool, str, int, float]
"""A field value as it appears in a patient document."""

OPERATORS = {"eq": "=", "ne": "!=", "ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


PACKAGE = Path(__file__).resolve().parent.parent
"""The installed package. clingo loads programs by path, so the package is always real files;
`Path(__file__)` finds them without importing `importlib.resources` (13 ms of start-up)."""


def engine_file(name: str) -> str:
    """Path of one of the engine's own ASP programs (shipped inside the package)."""
    return str(PACKAGE / "asp" / name)


def default_rules_dir() -> Path:
    """The bundled rules: inside the installed wheel, or `rules/` of a source checkout."""
    packaged = PACKAGE / "rules"
    return packaged if packaged.is_dir() else PACKAGE.parent / "rules"


def default_examples_dir() -> Path:
    """The bundled example patients: inside the installed wheel, or `examples/` of a checkout."""
    packaged = PACKAGE / "examples"
    return packaged if packaged.is_dir() else PACKAGE.parent / "examples"


@dataclass(frozen=True)
class Field:
    """An input field of the patient document, as declared by field/2 and its companions."""

    path: str
    type: str  # bool | grade | choice | number | integer
    values: tuple[str, ...]  # grades in rank order, or choices; empty otherwise
    minimum: int | None
    maximum: int | None
    question: str
    kind: str  # fact | finding | outcome | care (see kind/2 in vocabulary.lp)
    unit: str | None = None  # UCUM code of a number field (unit/2), e.g. "mo"
    term: str | None = None  # how running text names it (term/2): "Conservative care"
    changes: str | None = None  # a fact's natural change over time (changes/2): rising | either

    def supersedes(self, later: Value, earlier: Value) -> bool:
        """Whether a later answer `later` of this fact may stand for `earlier` as the patient's
        course (changes/2): arthritis spreads, a contra-indication begins or ends. A sex does
        not change from form to form: two answers are then sources that disagree."""
        if later == earlier or self.changes == "either":
            return True
        rising = self.changes == "rising" and not isinstance(later, (bool, str))
        return rising and not isinstance(earlier, (bool, str)) and later > earlier  # type: ignore[operator]

    @property
    def name(self) -> str:
        """The field in words: its term, else its question."""
        return self.term or self.question

    @property
    def immutable(self) -> bool:
        """A known value is a fact about the patient that no care changes."""
        return self.kind == "fact"


@dataclass(frozen=True)
class Test:
    """The test of a condition: field, comparison and the value compared with."""

    field: str
    op: str
    value: Value
    _described: str = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # written once: every decision's JSON writes each test (0.15 ms a request of two trees)
        object.__setattr__(self, "_described", f"{OPERATORS[self.op]} {show(self.value)}")

    def describe(self) -> str:
        """The test as written in JSON output: `>= 6`, `= true`, `!= female`."""
        return self._described


def variant_symbol(policy: str, reading: str, alternative: str) -> clingo.Symbol:
    """The term that names `policy` read with an alternative: variant/4 of vocabulary.lp."""
    return clingo.Function("alt", [clingo.String(policy), clingo.String(reading), clingo.String(alternative)])


def show(value: Value) -> str:
    """A value as JSON writes it: true, 4, 5.5, severe."""
    return str(value).lower() if isinstance(value, bool) else str(value)


@dataclass(frozen=True)
class Requirement:
    """One node of a policy's requirement tree."""

    id: str
    form: str  # all_of | any_of | condition
    label: str
    text: str | None  # the policy sentence it encodes; None: its parent's
    interpretations: tuple[str, ...]
    parts: tuple[str, ...]
    test: Test | None
    defects: tuple[str, ...] = ()  # what is wrong with the published sentence
    background: bool = False  # from the background text, not the criteria list


@dataclass(frozen=True)
class Alternative:
    """Another reasonable reading of a contested point, as rules of a policy variant."""

    id: str
    text: str  # the alternative in one line
    scope: str = "clinical"  # clinical: told to clinicians | analysis: to analysts only
    refuted: str | None = None  # for analysis scope: the policy sentence that refutes it

    @property
    def clinical(self) -> bool:
        """Whether clinicians are told of it (a decision it changes is not robust)."""
        return self.scope == "clinical"


@dataclass(frozen=True)
class Reading:
    """A point of the policy text that admits more than one reasonable reading."""

    id: str
    requirement: str  # whose sentence is read
    adopted: str  # the reading the policy's requirements encode, in one line
    alternatives: tuple[Alternative, ...]

    def alternative(self, aid: str) -> Alternative:
        return next(a for a in self.alternatives if a.id == aid)


@dataclass(frozen=True)
class Policy:
    id: str
    title: str
    reference: str
    commissioner: str
    review: int
    source: str
    root: str
    requirements: Mapping[str, Requirement]
    recourse: str | None = None  # what a clinician can do after a refusal
    readings: Mapping[str, Reading] = dataclasses.field(default_factory=dict)  # contested points, by id
    cautions: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    """Per requirement, the routes that, when met, caution against waiting to meet it (caution/3)."""
    caveats: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    """Per field, what the policy's text leaves open for a clinician answering it (caveat/3)."""
    unsuitable: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Per requirement that refuses on clinical grounds, what is said instead of the recourse."""
    taken: tuple[str, str] | None = None
    """Where and when the source text was taken (source_taken/3): the place, and "YYYY-MM-DD"."""
    steps: tuple[str, ...] = ()
    """Requirements that ask for care a clinician can give now: a yes/no condition on a field of
    kind/2 `care` (an MSK assessment), in declared order."""
    family: str = ""
    """The family this policy is an edition of (edition/3): the id users name, and the id of its
    questionnaire, whose answers serve every edition. Its own id when it declares no edition."""
    names: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Per field it tests, the field in words (`Field.name`: `At risk of joint destruction …`),
    for text that names a field without the rule set at hand: never a JSON path to a GP."""
    in_force_from: str | None = None
    """The first day ("YYYY-MM-DD") this edition is in force; None: from the start (undated)."""
    in_force_until: str | None = None
    """The day the family's next edition comes into force (this one is no longer); None: no
    later edition."""

    @property
    def dated(self) -> bool:
        """Whether this policy is one of several editions of its family, or dated itself: then
        every output names the edition (an undated policy alone in its family says nothing
        more than it always has)."""
        return self.in_force_from is not None or self.in_force_until is not None

    def in_force(self, day: datetime.date) -> bool:
        """Whether this edition is in force on `day`."""
        start = self.in_force_from is None or datetime.date.fromisoformat(self.in_force_from) <= day
        end = self.in_force_until is None or day < datetime.date.fromisoformat(self.in_force_until)
        return start and end

    def edition_json(self, rules: str) -> dict[str, str | None]:
        """The edition that decided, as every decision's JSON names it (`rules`: its sha256)."""
        return {
            "policy": self.id,
            "family": self.family,
            "in_force_from": self.in_force_from,
            "rules": rules,
        }

    def edition_words(self) -> str:
        """The edition in words: `edition hip-resurfacing-2027 of hip-resurfacing, in force from
        2027-04-01` (an undated first edition: `in force before` the next one's first day)."""
        start, end = self.in_force_from, self.in_force_until
        span = (
            f"from {start} until {end}"
            if start and end
            else f"from {start}"
            if start
            else f"before {end}"
            if end
            else "always"
        )
        return f"edition {self.id} of {self.family}, in force {span}"

    def changed_from(self, other: Policy) -> list[str]:
        """The requirements this policy (an edition) words, quotes or tests otherwise than
        `other` (another edition of its family), or that only one of them has: this one's first,
        in its order."""

        def said(r: Requirement) -> tuple[object, ...]:
            return (r.form, r.label, r.text, r.test, r.parts)

        ours, theirs = self.requirements, other.requirements
        return [
            *(rid for rid, r in ours.items() if rid not in theirs or said(theirs[rid]) != said(r)),
            *(rid for rid in theirs if rid not in ours),
        ]

    def readings_of(self, rid: str) -> list[Reading]:
        """The contested readings of requirement `rid`'s sentence."""
        return [r for r in self.readings.values() if r.requirement == rid]

    def below(self, rid: str) -> Iterator[Requirement]:
        """Requirement `rid` and every requirement under it, depth first in declared order (a
        requirement with two parents comes twice)."""
        requirement = self.requirements[rid]
        yield requirement
        for part in requirement.parts:
            yield from self.below(part)

    def sentence(self, rid: str) -> str | None:
        """The policy sentence behind requirement `rid`: its own, else its nearest ancestor's."""
        text = self.requirements[rid].text
        if text is not None:
            return text
        parents = [r.id for r in self.requirements.values() if rid in r.parts]
        return next((s for parent in parents if (s := self.sentence(parent))), None)

    def fields(self) -> frozenset[str]:
        """The input fields this policy tests."""
        return frozenset(r.test.field for r in self.requirements.values() if r.test)

    def tested_below(self, rid: str) -> list[str]:
        """The input fields requirement `rid` and its parts test, in declared order."""
        return list(dict.fromkeys(r.test.field for r in self.below(rid) if r.test is not None))

    def to_json(self, today: datetime.date) -> dict[str, object]:
        """The policy as `llr-asp policies --format json` lists it."""
        return {
            "id": self.id,
            "reference": self.reference,
            "title": self.title,
            "commissioner": self.commissioner,
            "review": self.review,
            "review_due": self.review_due(today),
            "source": self.source,
            "family": self.family,
            "in_force_from": self.in_force_from,
            "in_force_until": self.in_force_until,
        }

    def review_status(self, today: datetime.date) -> str:
        """`overdue` once the review year has passed, `due` in the review year, else `current`."""
        if self.review < today.year:
            return "overdue"
        return "due" if self.review == today.year else "current"

    def review_json(self, today: datetime.date) -> dict[str, str]:
        """The review date and whether it has passed, as every decision's JSON carries it."""
        return {"due": str(self.review), "status": self.review_status(today)}

    def review_words(self, today: datetime.date) -> str:
        """`Policy review date: 2026 (review due this year)`."""
        said = {"overdue": " (overdue for review)", "due": " (review due this year)", "current": ""}
        return f"Policy review date: {self.review}{said[self.review_status(today)]}"

    def review_due(self, today: datetime.date) -> str | None:
        """Whether the review date has passed or falls in the current year, in words."""
        if self.review < today.year:
            return "review overdue"
        if self.review == today.year:
            return "review due this year"
        return None


@dataclass(frozen=True, eq=False)
class RuleSet:
    directory: Path
    files: tuple[str, ...]
    digest: str
    fields: Mapping[str, Field]
    policies: Mapping[str, Policy]
    assumptions: Mapping[str, str]
    warnings: tuple[RuleError, ...] = ()
    """Suspect but usable declarations (rule_warning/2), with file and line."""
    procedures: Mapping[str, tuple[tuple[str, str, str], ...]] = dataclasses.field(default_factory=dict)
    """Per policy, the (code system, code, display) of the orders it decides (procedure/4)."""
    bars: tuple[tuple[str, str, str, Value], ...] = ()
    """Domain assumptions on change (bars/4): (assumption, field not to raise, while field, has value)."""

    def ground(
        self,
        programs: Iterable[str],
        parts: Iterable[tuple[str, list[clingo.Symbol]]] = (),
        constants: Mapping[str, int] | None = None,
    ) -> clingo.Control:
        """The rule set grounded anew with vocabulary.lp and the engine `programs` (paths),
        with `constants` in place of the programs' own `#const` values."""
        return ground([*self.files, engine_file("vocabulary.lp"), *programs], parts, constants=constants)

    def caveats(self, field: str, policies: Iterable[Policy] | None = None) -> list[str]:
        """What the texts of `policies` (default: all) leave open for a clinician answering
        `field`, each said once."""
        chosen = self.policies.values() if policies is None else policies
        return list(dict.fromkeys(c for p in chosen for c in p.caveats.get(field, ())))

    decided_on: str | None = None
    """The date field that holds the day a record is decided on (decided_on/1): its edition."""
    answers_current_for: int | None = None
    """Months a form's answers decide without being confirmed (answers_current_for/1; None: any age)."""

    @property
    def families(self) -> dict[str, list[Policy]]:
        """Each policy family (edition/3) with its editions, earliest first (an undated first
        edition before the dated ones), in the order the rules declare the families."""
        found: dict[str, list[Policy]] = {}
        for policy in self.policies.values():
            found.setdefault(policy.family, []).append(policy)
        return {f: sorted(ps, key=lambda p: p.in_force_from or "") for f, ps in found.items()}

    def in_force(self, family: str, day: datetime.date) -> Policy:
        """The edition of `family` in force on `day`; NotInForce naming the earliest day one is."""
        editions = self.families[family]
        found = [p for p in editions if p.in_force(day)]
        if not found:
            first = editions[0].in_force_from
            raise NotInForce(
                f'no edition of policy "{family}" is in force on {day.isoformat()}: '
                f"the earliest is in force from {first}"
            )
        return found[0]

    def current(self, family: str) -> Policy:
        """The edition of `family` in force today, else its earliest (a family not yet in
        force): the one a service for the family is described by until a record's date picks."""
        editions = self.families[family]
        today = datetime.date.today()
        return next((p for p in editions if p.in_force(today)), editions[0])

    def select(self, selection: str | None, on: datetime.date | None = None) -> list[Policy]:
        """The policies named by `selection`, as in force on the day `on` (default: today): a
        family, the edition of it in force; an edition's own id, that edition; `all` or None,
        each family's edition in force (a family with none in force that day is left out)."""
        day = on or datetime.date.today()
        families = self.families
        if selection in (None, "all"):
            chosen = [self.in_force(f, day) for f, ps in families.items() if any(p.in_force(day) for p in ps)]
            if not chosen:
                self.in_force(min(families, key=lambda f: families[f][0].in_force_from or ""), day)
            return chosen
        if selection in families:
            return [self.in_force(selection, day)]
        if selection not in self.policies:
            editions = [p for p in self.policies if p not in families]
            known = ", ".join([*families, "all", *editions])
            raise UsageError(f'unknown policy "{selection}"; choose one of {known}')
        return [self.policies[selection]]

    def editions(self) -> list[Policy]:
        """Every policy, family by family, each family's editions earliest first."""
        return [p for editions in self.families.values() for p in editions]

    def check_selection(self, selection: str | None, on: datetime.date | None = None) -> None:
        """UsageError unless `selection` names a family, an edition or "all" (or is None); with
        a day `on`, NotInForce unless an edition of it is in force then. (Without a day, each
        record's own date picks the edition: none in force is that record's error.)"""
        try:
            self.select(selection, on)
        except NotInForce:
            if on is not None:
                raise

    def date_of(self, values: Mapping[str, Value]) -> datetime.date | None:
        """The day a record with the field `values` is decided on (decided_on/1), if it says."""
        said = values.get(self.decided_on) if self.decided_on else None
        return datetime.date.fromisoformat(said) if isinstance(said, str) else None


def rule_files(directory: Path) -> list[Path]:
    """The `.lp` files of a rule set directory, in a stable order."""
    if not directory.is_dir():
        raise RuleError(str(directory), None, "rules directory not found (give --rules DIR)")
    files = sorted(f for f in directory.rglob("*.lp") if f.is_file())
    if not files:
        raise RuleError(str(directory), None, "no .lp rule files in this directory")
    return files


def digest(files: Iterable[Path], directory: Path) -> str:
    sha = hashlib.sha256()
    for file in files:
        sha.update(file.relative_to(directory).as_posix().encode() + b"\0")
        sha.update(file.read_bytes() + b"\0")
    return sha.hexdigest()


def ground(
    files: Iterable[str],
    parts: Iterable[tuple[str, list[clingo.Symbol]]] = (),
    renamed: tuple[str, Iterable[str]] | None = None,
    constants: Mapping[str, int] | None = None,
) -> clingo.Control:
    """Load and ground ASP files; any syntax error or clingo warning is a RuleError.

    `parts`: program parts to ground besides base. `renamed`: (prefix, files) loaded with the
    prefix on every predicate name, so that a second version of a rule set can sit beside the
    first (versions.lp maps it back into the vocabulary). `constants`: values that take the
    place of the files' `#const` declarations (clingo's `-c`).
    """
    files = list(files)
    messages: list[str] = []
    arguments = ["--warn=all", *(f"-c{name}={value}" for name, value in (constants or {}).items())]
    control = clingo.Control(arguments, logger=lambda _code, msg: messages.append(msg))
    try:
        for file in files:
            control.load(file)
        if renamed is not None:
            from .ruletext import load_renamed  # clingo.ast: slow to import, seldom needed

            load_renamed(control, *renamed)
        with _memory_bound():
            control.ground([("base", []), *parts])
    except MemoryError:
        where = str(Path(files[0]).parent) if files else "rules"
        runaway = "a rule may derive atoms without end (such as p(X+1) :- p(X))"
        problem = f"grounding needed over {GROUNDING_MEMORY >> 30} GiB and was stopped: {runaway}"
        raise RuleError(where, None, f"{problem}; check the recursive rules with arithmetic") from None
    except RuntimeError as error:
        if not messages:
            raise RuleError("rules", None, f"clingo could not load the rules: {error}") from None
    if messages:
        raise _message_error(messages[0])
    return control


GROUNDING_MEMORY = 1 << 30
"""Memory grounding may take beyond what the process holds: the rules of a hundred policies
need a few megabytes; a rule that derives atoms without end reaches this in about ten seconds."""


@contextlib.contextmanager
def _memory_bound() -> Iterator[None]:
    """Bound the process's address space while clingo grounds (where the system allows it),
    so that runaway rules end in a MemoryError instead of taking the machine's memory."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        with open("/proc/self/status") as status:
            size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    except (ImportError, OSError, StopIteration, ValueError):
        yield  # not Linux: no bound
        return
    bound = size + GROUNDING_MEMORY
    if soft != resource.RLIM_INFINITY and soft <= bound:
        yield  # already bounded tighter
        return
    resource.setrlimit(
        resource.RLIMIT_AS, (bound if hard == resource.RLIM_INFINITY else min(bound, hard), hard)
    )
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _message_error(message: str) -> RuleError:
    """A clingo message `file:line:col-col: error: ...` as a RuleError."""
    found = re.match(
        r"^(?P<file>.*?):(?P<line>\d+):\d+(?:-\d+(?::\d+)?)?: (?P<text>.*)", message.strip(), re.S
    )
    if not found:
        return RuleError("rules", None, " ".join(message.split()))
    return RuleError(found["file"], int(found["line"]), " ".join(found["text"].split()))


def load_rules(directory: Path | None = None) -> RuleSet:
    """Read and check the rule set in `directory` (default: the bundled rules)."""
    return compile_rules(directory)[0]


def compile_rules(
    directory: Path | None = None, programs: Iterable[str] = ()
) -> tuple[RuleSet, clingo.Control]:
    """Read and check a rule set, grounded together with the engine `programs`."""
    directory = Path(directory) if directory is not None else default_rules_dir()
    files = rule_files(directory)
    control = ground([*map(str, files), engine_file("vocabulary.lp"), *programs])
    facts = _Facts(control)
    errors = facts.get("rule_error", 2)
    warnings = facts.get("rule_warning", 2)
    located_warnings: tuple[RuleError, ...] = ()
    if errors or warnings:
        from .ruletext import located, parse_rules  # clingo.ast: only for rules with problems

        statements = parse_rules(files)
        if errors:
            problems = located(errors, statements)
            first = problems[0]
            raise DeclarationError(first.file, first.line, first.problem, problems)
        located_warnings = located(warnings, statements)
    named = [p for (p,) in facts.get("policy", 1) if p.type != clingo.SymbolType.String]
    if named:
        problem = f'policy ids are strings: write policy("{named[0]}"), not policy({named[0]})'
        raise RuleError(str(directory), None, problem)
    if not facts.get("policy", 1):
        raise RuleError(
            str(directory), None, "the rules declare no policy (policy/1); is this the right directory?"
        )
    _check_editions(facts, files)
    fields = _fields(facts)
    rules = RuleSet(
        directory=directory,
        files=tuple(str(f) for f in files),
        digest=digest(files, directory),
        fields=fields,
        policies=_policies(facts, fields),
        assumptions={a.string: _said(s) for a, s in facts.get("assumption", 2)},
        warnings=located_warnings,
        procedures=_procedures(facts),
        bars=tuple((a.string, x.string, f.string, symbol_value(v)) for a, x, f, v in facts.get("bars", 4)),
        decided_on=next((f.string for (f,) in facts.get("decided_on", 1)), None),
        answers_current_for=next((m.number for (m,) in facts.get("answers_current_for", 1)), None),
    )
    return rules, control


DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
"""A day as the rules and records write it: YYYY-MM-DD."""


def is_date(text: object) -> bool:
    """Whether `text` is a real day written YYYY-MM-DD (2027-02-30 is not)."""
    if not isinstance(text, str) or not DATE.fullmatch(text):
        return False
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _check_editions(facts: _Facts, files: list[Path]) -> None:
    """What vocabulary.lp cannot see of edition/3: a family that is not a string, a day that is
    not a real "YYYY-MM-DD" (a DeclarationError at the file and line, as the other checks)."""
    wrong = []
    for p, family, day in facts.get("edition", 3):
        if family.type != clingo.SymbolType.String:
            problem = "an edition's family is a string, as policy ids are"
        elif day.type != clingo.SymbolType.String or not is_date(day.string):
            problem = 'an edition\'s first day is a real date written "YYYY-MM-DD"'
        else:
            continue
        wrong.append([clingo.String(problem), clingo.Function("edition", [p, family, day])])
    if wrong:
        from .ruletext import located, parse_rules

        problems = located(wrong, parse_rules(files))
        raise DeclarationError(problems[0].file, problems[0].line, problems[0].problem, problems)


class _Facts:
    """The ground facts of a control, by predicate, in grounding order."""

    def __init__(self, control: clingo.Control) -> None:
        self._control = control

    def get(self, name: str, arity: int) -> list[list[clingo.Symbol]]:
        atoms = self._control.symbolic_atoms.by_signature(name, arity)
        return [list(atom.symbol.arguments) for atom in atoms if atom.is_fact]

    def table(self, name: str, arity: int) -> dict[clingo.Symbol, list[clingo.Symbol]]:
        """Facts keyed by their first argument, e.g. title(P,T) -> {P: [T]}."""
        return {args[0]: args[1:] for args in self.get(name, arity)}


def symbol_value(symbol: clingo.Symbol) -> Value:
    """A clingo constant, string or number as the value a patient document would hold."""
    if symbol.type == clingo.SymbolType.String:
        return symbol.string
    if symbol.type == clingo.SymbolType.Number:
        return symbol.number
    if symbol.name in ("true", "false") and not symbol.arguments:
        return symbol.name == "true"
    return symbol.name


def _fields(facts: _Facts) -> dict[str, Field]:
    grades: dict[str, list[tuple[int, str]]] = {}
    for f, g, n in facts.get("grade", 3):
        grades.setdefault(f.string, []).append((n.number, g.name))
    choices: dict[str, list[str]] = {}
    for f, c in facts.get("choice", 2):
        choices.setdefault(f.string, []).append(c.name)
    ranges = {f.string: (lo.number, hi.number) for f, lo, hi in facts.get("range", 3)}
    questions = {f.string: _said(q) for f, q in facts.get("question", 2)}
    kinds = {f.string: k.name for f, k in facts.get("kind", 2)}
    units = {f.string: u.string for f, u in facts.get("unit", 2)}
    terms = {f.string: _said(t) for f, t in facts.get("term", 2)}
    changes = {f.string: d.name for f, d in facts.get("changes", 2)}
    immutable = {f.string for (f,) in facts.get("immutable", 1)}  # kind fact, or declared so before kind/2
    fields = {}
    for f, t in facts.get("field", 2):
        path = f.string
        values = [g for _, g in sorted(grades.get(path, []))] or sorted(choices.get(path, []))
        lo, hi = ranges.get(path, (None, None))
        kind = kinds.get(path) or ("fact" if path in immutable else "finding")
        fields[path] = Field(
            path,
            t.name,
            tuple(values),
            lo,
            hi,
            questions[path],
            kind,
            units.get(path),
            terms.get(path),
            changes.get(path),
        )
    return fields


def _said(symbol: clingo.Symbol) -> str:
    """Words of the rules (titles, labels, sentences, questions) as they are shown: a control
    character (an escape sequence, a newline) is written out, never sent to a terminal."""
    return printable(symbol.string)


def _procedures(facts: _Facts) -> dict[str, tuple[tuple[str, str, str], ...]]:
    found: dict[str, list[tuple[str, str, str]]] = {}
    for p, system, code, display in facts.get("procedure", 4):
        found.setdefault(p.string, []).append((system.string, code.string, _said(display)))
    return {p: tuple(codes) for p, codes in found.items()}


def _own(facts: list[list[clingo.Symbol]]) -> list[list[clingo.Symbol]]:
    """The declarations of policies, not of their variants (alternative readings, whose
    requirements only the engine evaluates)."""
    return [args for args in facts if args[0].type == clingo.SymbolType.String]


def _grouped(facts: list[list[clingo.Symbol]]) -> dict[tuple[str, str], list[str]]:
    """(P, R, S) facts as {(P, R): [S, ...]}."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for p, r, s in facts:
        grouped.setdefault((p.string, r.string), []).append(_said(s))
    return grouped


def _policies(facts: _Facts, fields: Mapping[str, Field]) -> dict[str, Policy]:
    meta = {
        name: {p.string: v[0] for p, v in facts.table(name, 2).items()}
        for name in ("title", "reference", "commissioner", "review", "source", "root", "recourse")
    }
    parts: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for p, r, n, c in _own(facts.get("part", 4)):
        parts.setdefault((p.string, r.string), []).append((n.number, c.string))
    texts = {(p.string, r.string): _said(s) for p, r, s in facts.get("text", 3)}
    notes = _grouped(facts.get("interpretation", 3))
    defects = _grouped(facts.get("defect", 3))
    background = {(p.string, r.string) for p, r in facts.get("background", 2)}

    requirements: dict[str, dict[str, Requirement]] = {}

    def add(p: clingo.Symbol, r: clingo.Symbol, form: str, label: clingo.Symbol, test: Test | None) -> None:
        key = (p.string, r.string)
        requirements.setdefault(p.string, {})[r.string] = Requirement(
            id=r.string,
            form=form,
            label=_said(label),
            text=texts.get(key),
            interpretations=tuple(notes.get(key, ())),
            parts=tuple(c for _, c in sorted(parts.get(key, []))),
            test=test,
            defects=tuple(defects.get(key, ())),
            background=key in background,
        )

    for form in ("all_of", "any_of"):
        for p, r, label in _own(facts.get(form, 3)):
            add(p, r, form, label, None)
    for p, r, label, f, op, v in _own(facts.get("condition", 6)):
        add(p, r, "condition", label, Test(f.string, op.name, symbol_value(v)))

    scopes = {(p.string, x.string, a.string): s.name for p, x, a, s in facts.get("scope", 4)}
    refuted = {(p.string, x.string, a.string): _said(s) for p, x, a, s in facts.get("refuted", 4)}
    alternatives: dict[tuple[str, str], list[Alternative]] = {}
    for p, x, a, text in facts.get("alternative", 4):
        key = (p.string, x.string, a.string)
        alternatives.setdefault((p.string, x.string), []).append(
            Alternative(a.string, _said(text), scopes[key], refuted.get(key))
        )
    readings: dict[str, dict[str, Reading]] = {}
    for p, x, r, adopted in facts.get("reading", 4):
        readings.setdefault(p.string, {})[x.string] = Reading(
            x.string, r.string, _said(adopted), tuple(alternatives.get((p.string, x.string), ()))
        )

    caveats: dict[str, dict[str, list[str]]] = {}
    for p, f, text in facts.get("caveat", 3):
        caveats.setdefault(p.string, {}).setdefault(f.string, []).append(_said(text))
    cautions: dict[str, dict[str, list[str]]] = {}
    for p, r, u in facts.get("caution", 3):
        cautions.setdefault(p.string, {}).setdefault(r.string, []).append(u.string)

    taken = {p.string: (_said(w), _said(d)) for p, w, d in facts.get("source_taken", 3)}
    care = {f.string for f, k in facts.get("kind", 2) if k.name == "care"}

    def steps(policy: str) -> tuple[str, ...]:
        return tuple(
            rid
            for rid, r in requirements.get(policy, {}).items()
            if r.test is not None and r.test.op == "eq" and r.test.value is True and r.test.field in care
        )

    editions = {p.string: (f.string, d.string) for p, f, d in facts.get("edition", 3)}
    starts: dict[str, list[tuple[str, str]]] = {}  # family -> (first day, "" undated; policy)
    for (p,) in facts.get("policy", 1):
        family, day = editions.get(p.string, (p.string, ""))
        starts.setdefault(family, []).append((day, p.string))
    until: dict[str, str] = {}  # policy -> the first day of the next edition of its family
    for dated in starts.values():
        ordered = sorted(dated)
        until.update((earlier, later) for (_, earlier), (later, _) in itertools.pairwise(ordered))

    return {
        p.string: Policy(
            id=p.string,
            family=editions.get(p.string, (p.string, ""))[0],
            in_force_from=editions[p.string][1] if p.string in editions else None,
            in_force_until=until.get(p.string),
            title=_said(meta["title"][p.string]),
            reference=_said(meta["reference"][p.string]),
            commissioner=_said(meta["commissioner"][p.string]),
            review=meta["review"][p.string].number,
            source=meta["source"][p.string].string,
            root=meta["root"][p.string].string,
            requirements=requirements.get(p.string, {}),
            recourse=_said(meta["recourse"][p.string]) if p.string in meta["recourse"] else None,
            readings=readings.get(p.string, {}),
            cautions={r: tuple(us) for r, us in cautions.get(p.string, {}).items()},
            caveats={f: tuple(texts) for f, texts in caveats.get(p.string, {}).items()},
            unsuitable={r.string: _said(t) for q, r, t in facts.get("unsuitable", 3) if q == p},
            taken=taken.get(p.string),
            steps=steps(p.string),
            names={path: field.name for path, field in fields.items()},
        )
        for (p,) in facts.get("policy", 1)
    }
