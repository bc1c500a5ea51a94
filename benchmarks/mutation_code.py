"""Mutation score of the test suite on the Python and engine code (issue "Tests that bite"),
as benchmarks/mutation_score.py is for the rules. Not a test: it takes minutes.

A mutant changes one thing: in Python (found with `ast`), a comparison operator, `and`/`or`,
`True`/`False`, or a `not` dropped; in the engine's ASP programs (llr_asp/asp/*.lp), a rule
removed or a `not` dropped. Each mutant is written into a copy of the package, which the tests
import first (PYTHONPATH); the suite runs with `-x`, so a killed mutant stops at its first red
test. A survivor means no test notices the change: each is listed with its place.

Hand-made mutants (benchmarks/planted.py, issue 28): each a plausible bug in one line, with the
test files that cover its code; run with --planted (all, or --area AREA), each against its own
tests, with the score per area. A mutant whose text is no longer in the code is reported stale,
never counted. Properties run derandomized with no example database (the `mutation` hypothesis
profile of tests/conftest.py), so that a verdict does not depend on the draw or on the mutants
tried before it.

Run: python benchmarks/mutation_code.py [--sample 40] [--seed 1] [--tests "tests/..."]
     python benchmarks/mutation_code.py --planted [--area AREA] [--suite DIR] [--only TEXT]
"""

from __future__ import annotations

import argparse
import ast
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "llr_asp"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from planted import PLANTED, Planted  # noqa: E402

TESTS = [
    "tests/test_examples.py",
    "tests/test_requirements.py",
    "tests/test_readings.py",
    "tests/test_properties.py",
    "tests/test_numbers.py",
    "tests/test_quality.py",
    "tests/test_check.py",
    "tests/test_cli.py",
    "tests/test_input_errors.py",
    "tests/test_edges.py",
    "tests/test_batch.py",
    "tests/test_whatif.py",
    "tests/test_interview.py",
    "tests/test_golden.py",
    "tests/test_markdown.py",
    "tests/test_escaping.py",
    "tests/test_analysis.py",
    "tests/test_difference.py",
    "tests/test_rules.py",
    "tests/test_web_api.py",
]
SWAPS = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
NEGATION = re.compile(r"\bnot\s+(?=[a-z_]\w*\()")


@dataclass(frozen=True)
class Mutant:
    name: str  # file:line and what changed
    file: Path  # relative to the package
    text: str  # the mutated file


def python_mutants(path: Path) -> Iterator[Mutant]:
    source = path.read_text()
    tree = ast.parse(source)
    spots = [
        node
        for node in ast.walk(tree)
        if isinstance(node, (ast.Compare, ast.BoolOp, ast.UnaryOp, ast.Constant))
    ]
    for index, node in enumerate(spots):
        if isinstance(node, ast.Compare) and type(node.ops[0]) in SWAPS:
            change = f"{type(node.ops[0]).__name__} -> {SWAPS[type(node.ops[0])].__name__}"
        elif isinstance(node, ast.BoolOp):
            change = "and -> or" if isinstance(node.op, ast.And) else "or -> and"
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            change = "not dropped"
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            change = f"{node.value} -> {not node.value}"
        else:
            continue
        mutated = ast.parse(source)
        target = [
            n
            for n in ast.walk(mutated)
            if isinstance(n, (ast.Compare, ast.BoolOp, ast.UnaryOp, ast.Constant))
        ][index]
        _apply(mutated, target)
        yield Mutant(
            f"{path.relative_to(PACKAGE)}:{node.lineno} {change}",
            path.relative_to(PACKAGE),
            ast.unparse(mutated),
        )


def _apply(tree: ast.AST, node: ast.AST) -> None:
    if isinstance(node, ast.Compare):
        node.ops[0] = SWAPS[type(node.ops[0])]()
    elif isinstance(node, ast.BoolOp):
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif isinstance(node, ast.Constant):
        node.value = not node.value
    else:  # not x -> x
        for parent in ast.walk(tree):
            for field, value in ast.iter_fields(parent):
                if value is node:
                    setattr(parent, field, node.operand)  # type: ignore[attr-defined]
                elif isinstance(value, list) and node in value:
                    value[value.index(node)] = node.operand  # type: ignore[attr-defined]


def engine_mutants(path: Path) -> Iterator[Mutant]:
    lines = path.read_text().split("\n")
    start = None
    documentation = False  # inside a %*! ... *% block
    for number, line in enumerate(lines):
        if line.startswith("%*!"):
            documentation = "*%" not in line[3:]
            continue
        if documentation:
            documentation = "*%" not in line
            continue
        code = line.split("%")[0]
        if start is None and code.strip() and not code.lstrip().startswith(("#", "*")):
            start = number
        if start is not None and code.rstrip().endswith("."):
            removed = lines[:start] + [""] * (number - start + 1) + lines[number + 1 :]
            yield Mutant(
                f"asp/{path.name}:{start + 1} rule removed", path.relative_to(PACKAGE), "\n".join(removed)
            )
            start = None
        if NEGATION.search(code):
            dropped = [*lines[:number], NEGATION.sub("", line, count=1), *lines[number + 1 :]]
            yield Mutant(
                f"asp/{path.name}:{number + 1} not dropped", path.relative_to(PACKAGE), "\n".join(dropped)
            )


def all_mutants() -> list[Mutant]:
    found: list[Mutant] = []
    for path in sorted(PACKAGE.glob("*/*.py")):  # the layers' modules; the shells' are planted
        if path.parent.name not in ("cli", "web") and path.name != "__init__.py":
            found += python_mutants(path)
    for path in sorted((PACKAGE / "asp").glob("*.lp")):
        found += engine_mutants(path)
    return found


def planted_mutants(chosen: list[Planted]) -> Iterator[tuple[Planted, Mutant | None]]:
    """Each hand-made mutant as a Mutant, or None where its text is not (once) in the code."""
    for planted in chosen:
        text = (PACKAGE / planted.file).read_text()
        if text.count(planted.old) != 1:
            yield planted, None
            continue
        name = f"{planted.file}: {planted.bug}"
        yield planted, Mutant(name, Path(planted.file), text.replace(planted.old, planted.new, 1))


def verdict(mutant: Mutant, work: Path, tests: list[str], suite: Path = ROOT) -> str:
    copy = work / "llr_asp"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "rules", copy / "rules")  # the copy finds the bundled rules and examples
    shutil.copytree(ROOT / "examples", copy / "examples")  # inside itself, as an installed wheel does
    (copy / mutant.file).write_text(mutant.text)
    environment = {**os.environ, "PYTHONPATH": str(work), "PYTHONDONTWRITEBYTECODE": "1"}
    environment["LLR_ASP_HYPOTHESIS"] = "mutation"  # derandomized, no example database
    # run from `work`: `python -m` puts the working directory first on sys.path, so the tests
    # (and every process they start) import the mutated copy, never the checkout
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "slow or not slow",  # every tier: the browser's and the processes' tests cover code too
        *(str(suite / t) for t in tests if (suite / t).exists()),
    ]
    try:
        result = subprocess.run(
            command,
            cwd=work,
            env=environment,
            capture_output=True,
            text=True,
            timeout=900,
        )
    except subprocess.TimeoutExpired:
        return "killed"  # a hang is noticed too
    return "survived" if result.returncode == 0 else "killed"


def calibrate(work: Path, tests: list[str], suite: Path = ROOT) -> None:
    """The unchanged code must survive: otherwise the harness itself fails the tests."""
    same = Mutant("(no change)", Path("core/errors.py"), (PACKAGE / "core" / "errors.py").read_text())
    if verdict(same, work, tests, suite) != "survived":
        raise SystemExit("the suite fails on an unchanged copy of the package: fix the harness first")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sample", type=int, default=40, help="mutants to try, drawn at random (0: all)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tests", nargs="*", default=TESTS)
    parser.add_argument("--planted", action="store_true", help="the hand-made mutants of planted.py")
    parser.add_argument("--area", help="with --planted: only this area (service, cds, fhir, ...)")
    parser.add_argument("--only", help="with --planted: only mutants whose file or bug contains this")
    parser.add_argument("--suite", type=Path, default=ROOT, help="the tree whose tests/ are run")
    arguments = parser.parse_args()
    if arguments.planted:
        run_planted(arguments.area, arguments.only, arguments.suite.resolve())
        return
    mutants = all_mutants()
    chosen = (
        mutants if arguments.sample == 0 else random.Random(arguments.seed).sample(mutants, arguments.sample)
    )
    counts: Counter[str] = Counter()
    survivors = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        calibrate(Path(work), arguments.tests)
        for number, mutant in enumerate(chosen, 1):
            result = verdict(mutant, Path(work), arguments.tests)
            counts[result] += 1
            if result == "survived":
                survivors.append(mutant.name)
            print(f"{number}/{len(chosen)} {result:8} {mutant.name}", flush=True)
    elapsed = time.perf_counter() - start
    python = sum(1 for m in mutants if ".py:" in m.name)
    engine = len(mutants) - python
    print(
        f"mutants: {len(mutants)} ({python} in Python, {engine} in the engine); tried {len(chosen)}, ", end=""
    )
    print(f"{elapsed / len(chosen):.0f} s each")
    print(f"score: {counts['killed']}/{len(chosen)} = {counts['killed'] / len(chosen):.1%} killed")
    for name in survivors:
        print(f"  survived: {name}")


def run_planted(area: str | None, only: str | None, suite: Path) -> None:
    """Every hand-made mutant (of `area`), each against the tests that cover its code; the score
    per area, the survivors and the stale ones."""
    chosen = [
        p
        for p in PLANTED
        if (area is None or p.area == area) and (only is None or only in p.file or only in p.bug)
    ]
    counts: dict[str, Counter[str]] = {}
    survivors, stale = [], []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        calibrate(Path(work), sorted({t for p in chosen for t in p.tests}), suite)
        for number, (planted, mutant) in enumerate(planted_mutants(chosen), 1):
            if mutant is None:
                stale.append(f"{planted.area}: {planted.file}: {planted.bug}")
                print(f"{number}/{len(chosen)} stale    {planted.file}: {planted.bug}", flush=True)
                continue
            result = verdict(mutant, Path(work), list(planted.tests), suite)
            counts.setdefault(planted.area, Counter())[result] += 1
            if result == "survived":
                survivors.append(f"{planted.area}: {mutant.name}")
            print(f"{number}/{len(chosen)} {result:8} {planted.area}: {mutant.name}", flush=True)
    elapsed = time.perf_counter() - start
    print(f"{len(chosen)} hand-made mutants in {elapsed:.0f} s")
    total: Counter[str] = Counter()
    for name, tally in counts.items():
        total += tally
        tried = tally["killed"] + tally["survived"]
        print(f"  {name:10} {tally['killed']}/{tried} = {tally['killed'] / tried:.0%} killed")
    tried = total["killed"] + total["survived"]
    if tried:
        print(f"score: {total['killed']}/{tried} = {total['killed'] / tried:.1%} killed")
    for name in survivors:
        print(f"  survived: {name}")
    for name in stale:
        print(f"  stale (its text is not in the code): {name}")


if __name__ == "__main__":
    main()
