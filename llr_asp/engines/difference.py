"""Semantic diff: the classes of patients two policies, or two versions of a policy, decide
differently, each with the requirement that makes the difference, a witness and a count.

difference.lp does the work in clingo: every model is a "cube" of the decision tree over the
fields, and the profile count is the sum over cubes of the product of the bucket counts of the
fields a cube leaves open. Python only groups the cubes by class and adds up.
"""

from __future__ import annotations

import math
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import clingo
import clingo.ast

from ..core.decision import plain
from ..core.errors import RuleError, UsageError
from ..core.files import witness_file_name
from ..core.patient import nested
from ..core.ruleset import RuleSet, compile_rules, engine_file, ground, symbol_value, variant_symbol
from ..core.shown import ShownAtoms

PROGRAMS = [engine_file("kleene.lp"), engine_file("difference.lp")]
OLD = "old"  # the earlier version's policies enter as old(P), see versions.lp


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a policy of a rule set."""

    label: str  # how reports name it: the policy id, or it with the version or reading
    rules: RuleSet
    policy: str


@dataclass(frozen=True)
class Difference:
    """A class of patients decided differently: same pair of decisions, same causes."""

    first: str  # the decision of the first side
    second: str
    requirements: tuple[str, ...]  # the requirements that make the difference
    profiles: int  # fully known profiles in the class
    message: str
    witness: dict[str, Any]  # the simplest patient of the class

    def file_name(self, number: int) -> str:
        """The name its witness is saved under (`diff --witnesses DIR`): its number in the report,
        the two decisions and the requirements, `01-eligible-vs-not_eligible-C4.json`."""
        return witness_file_name(number, self.first, "vs", self.second, "+".join(self.requirements))

    def to_json(self) -> dict[str, Any]:
        return {
            "decisions": [self.first, self.second],
            "requirements": list(self.requirements),
            "profiles": self.profiles,
            "message": self.message,
            "witness": self.witness,
        }


@dataclass(frozen=True)
class Comparison:
    first: Side
    second: Side
    differences: tuple[Difference, ...]
    profiles: int  # every fully known profile over the fields either side tests

    def to_json(self) -> dict[str, Any]:
        return {
            "compared": [
                {"label": s.label, "policy": s.policy, "rules": s.rules.digest}
                for s in (self.first, self.second)
            ],
            "profiles": self.profiles,
            "differences": [d.to_json() for d in self.differences],
        }


def compare_policies(rules: RuleSet, first: str, second: str) -> Comparison:
    """How two policies of one rule set decide the same patients differently."""
    for policy in (first, second):
        rules.select(policy)
    control = rules.ground(PROGRAMS, parts=[_part(first, second)])
    return _compare(control, Side(first, rules, first), Side(second, rules, second))


def compare_reading(rules: RuleSet, policy: str, reading: str, alternative: str | None = None) -> Comparison:
    """How the policy as adopted and the policy under an alternative reading of one contested
    point decide the same patients differently. `alternative`: its id (default: the reading's
    only alternative)."""
    [chosen] = rules.select(policy)
    if reading not in chosen.readings:
        known = ", ".join(chosen.readings) or "none"
        raise UsageError(f'{policy} has no contested reading "{reading}"; its readings: {known}')
    alternatives = chosen.readings[reading].alternatives
    if alternative is None and len(alternatives) > 1:
        known = ", ".join(a.id for a in alternatives)
        raise UsageError(f"{reading} has several alternatives; choose one with --alternative ({known})")
    ids = [a.id for a in alternatives]
    aid = alternative or ids[0]
    if aid not in ids:
        raise UsageError(f'{reading} has no alternative "{aid}"; choose one of {", ".join(ids)}')
    control = rules.ground(PROGRAMS, parts=[_part(policy, variant_symbol(policy, reading, aid))])
    first = Side(f"{policy} (adopted reading)", rules, policy)
    return _compare(control, first, Side(f"{policy} ({reading}: {aid})", rules, policy))


def compare_versions(
    old: Path, new: Path | None, policy: str, names: tuple[str, str] = ("old", "new")
) -> Comparison:
    """What a rule change does to one policy: its decisions under the `old` and `new` rules,
    each side labelled by the policy and its name (`hip-resurfacing (at HEAD)`)."""
    old_rules, _ = compile_rules(old)
    new_rules, _ = compile_rules(new)
    for rules in (old_rules, new_rules):
        rules.select(policy)
    control = ground(
        [*new_rules.files, engine_file("vocabulary.lp"), engine_file("versions.lp"), *PROGRAMS],
        parts=[_part(clingo.Function(OLD, [clingo.String(policy)]), policy)],
        renamed=(OLD + "_", old_rules.files),
    )
    before, after = (Side(f"{policy} ({name})", r, policy) for name, r in zip(names, (old_rules, new_rules)))
    return _compare(control, before, after)


def _part(first: str | clingo.Symbol, second: str | clingo.Symbol) -> tuple[str, list[clingo.Symbol]]:
    as_symbol = [s if isinstance(s, clingo.Symbol) else clingo.String(s) for s in (first, second)]
    return "compare", as_symbol


def _compare(control: clingo.Control, first: Side, second: Side) -> Comparison:
    control.configuration.solve.models = "0"  # type: ignore[union-attr]
    sizes = {
        a.symbol.arguments[0].string: a.symbol.arguments[1].number
        for a in control.symbolic_atoms.by_signature("size", 2)
    }
    sides = {
        a.symbol.arguments[1]: a.symbol.arguments[0].number
        for a in control.symbolic_atoms.by_signature("side", 2)
    }
    read = ShownAtoms(lambda s: _decode(s, sides))
    classes: dict[tuple[str, str, tuple[str, ...]], list[tuple[int, dict[str, Any]]]] = {}
    with control.solve(yield_=True) as models:
        for model in models:
            values: dict[str, Any] = {}
            decisions: dict[int, str] = {}
            causes: list[str] = []
            for kind, key, value in read(model.symbols(shown=True)):
                if kind == "value":
                    values[key] = value
                elif kind == "decision":
                    decisions[key] = value
                else:
                    causes.append(key)
            weight = math.prod(n for f, n in sizes.items() if f not in values)
            key = (decisions[1], decisions[2], tuple(sorted(causes)))
            classes.setdefault(key, []).append((weight, values))
    differences = [_difference(first, second, key, cubes) for key, cubes in classes.items()]
    differences.sort(key=lambda d: (-d.profiles, d.first, d.second, d.requirements))
    return Comparison(first, second, tuple(differences), math.prod(sizes.values()))


def _decode(symbol: clingo.Symbol, sides: dict[clingo.Symbol, int]) -> tuple[str, Any, Any]:
    args = symbol.arguments
    if symbol.name == "value":  # value(W,F,V)
        return "value", args[1].string, symbol_value(args[2])
    if symbol.name == "decision":  # decision(W,P,D): of a side, or of no interest (never shown)
        return "decision", sides.get(args[1], 0), args[2].name
    return "cause", args[0].string, None


def _difference(
    first: Side, second: Side, key: tuple[str, str, tuple[str, ...]], cubes: list[tuple[int, dict[str, Any]]]
) -> Difference:
    one, two, causes = key
    profiles = sum(weight for weight, _ in cubes)
    simplest = min(cubes, key=lambda cube: (len(cube[1]), sorted(cube[1].items(), key=repr)))[1]
    labels = [_label(first, second, c) for c in causes]
    message = (
        f"{' and '.join(labels) or 'The decision structure'} makes the difference: "
        f"{plain(one)} under {first.label}, {plain(two)} under {second.label} "
        f"({profiles:,} profiles)."
    )
    policy = {"policy": first.policy} if first.policy == second.policy else {}
    witness = {"id": f"witness {first.label} vs {second.label}", **policy, **nested(simplest)}
    return Difference(one, two, causes, profiles, message, witness)


def _label(first: Side, second: Side, rid: str) -> str:
    for side in (second, first):
        requirement = side.rules.policies[side.policy].requirements.get(rid)
        if requirement is not None:
            return f"{rid} ({requirement.label})"
    return rid


@contextmanager
def rules_at_revision(directory: Path, revision: str) -> Iterator[Path]:
    """The rule set in `directory` as it was at git `revision`, in a temporary directory."""

    def git(where: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(["git", "-C", str(where), *args], capture_output=True, check=True)
        except FileNotFoundError:
            raise UsageError("--against-git needs git on the PATH") from None
        except subprocess.CalledProcessError as error:
            problem = " ".join(error.stderr.decode(errors="replace").split()) or "git failed"
            raise UsageError(f"--against-git {revision}: {problem}") from None

    if not directory.is_dir():
        raise RuleError(str(directory), None, "rules directory not found (give --rules DIR)")
    if revision.startswith("-") or not revision.strip():
        raise UsageError(f"--against-git {revision!r}: not a git revision (a revision never starts with -)")
    top = Path(git(directory, "rev-parse", "--show-toplevel").stdout.decode().strip())
    prefix = git(directory, "rev-parse", "--show-prefix").stdout.decode().strip()
    tree = f"{revision}:{prefix}" if prefix else revision
    archive = git(top, "archive", "--format=tar", "--end-of-options", tree).stdout
    with tempfile.TemporaryDirectory(prefix="llr-asp-") as temporary:
        target = Path(temporary)
        (target / "rules.tar").write_bytes(archive)
        with tarfile.open(target / "rules.tar") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and _safe(m.name)]
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.12
            tar.extractall(target / "rules", members=members, **safe)  # type: ignore[arg-type]
        if not any((target / "rules").rglob("*.lp")):
            raise RuleError(f"{revision}:{prefix}", None, "no .lp rule files at this revision")
        yield target / "rules"


def _safe(name: str) -> bool:
    parts = Path(name).parts
    return not Path(name).is_absolute() and ".." not in parts
