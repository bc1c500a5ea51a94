"""The rule files as syntax (clingo.ast): a second version of a rule set loaded under renamed
predicates, and the file and line of the rule behind a declaration. Apart from the rest of
ruleset.py because importing clingo.ast costs start-up that only these uses need."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import clingo
import clingo.ast

from .errors import RuleError


class _Renamer(clingo.ast.Transformer):
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def visit_SymbolicAtom(self, atom: clingo.ast.AST) -> clingo.ast.AST:
        return atom.update(symbol=self._rename(atom.symbol))

    def visit_Defined(self, statement: clingo.ast.AST) -> clingo.ast.AST:
        return statement.update(name=self.prefix + statement.name)

    def _rename(self, term: clingo.ast.AST) -> clingo.ast.AST:
        if term.ast_type == clingo.ast.ASTType.Function:
            return term.update(name=self.prefix + term.name)
        if term.ast_type == clingo.ast.ASTType.UnaryOperation:  # classical negation: -p(X)
            return term.update(argument=self._rename(term.argument))
        if term.ast_type == clingo.ast.ASTType.Pool:  # p(a,b; c,d): a pool of atoms
            return term.update(arguments=[self._rename(t) for t in term.arguments])
        return term


def load_renamed(control: clingo.Control, prefix: str, files: Iterable[str]) -> None:
    renamer = _Renamer(prefix)
    with clingo.ast.ProgramBuilder(control) as builder:
        clingo.ast.parse_files(list(files), lambda statement: builder.add(renamer(statement)))


def located(problems: list[list[clingo.Symbol]], statements: list[clingo.ast.AST]) -> tuple[RuleError, ...]:
    """rule_error/rule_warning atoms as RuleErrors at the rule that declares the culprit."""
    ordered = sorted(
        (locate(declaration, statements), message.string, str(declaration))
        for message, declaration in problems
    )
    return tuple(
        RuleError(file, line or None, f"{message}: {declaration}")
        for (file, line), message, declaration in ordered
    )


def parse_rules(files: list[Path]) -> list[clingo.ast.AST]:
    """The rules of the rule files, parsed (for locating errors only), in the files' order: given
    several files at once, clingo parses the last first, and "the first rule that…" would be the
    last file's."""
    statements: list[clingo.ast.AST] = []
    for file in files:
        clingo.ast.parse_files([str(file)], statements.append)
    return [s for s in statements if s.ast_type == clingo.ast.ASTType.Rule]


def headed(
    statements: list[clingo.ast.AST], names: Iterable[str]
) -> Iterator[tuple[clingo.ast.AST, clingo.ast.AST]]:
    """Each rule whose head is an atom named one of `names`, with that atom."""
    names = set(names)
    for statement in statements:
        head = statement.head
        if head.ast_type != clingo.ast.ASTType.Literal:
            continue
        atom = head.atom.symbol
        if atom.ast_type == clingo.ast.ASTType.Function and atom.name in names:
            yield statement, atom


def locate_head(
    statements: list[clingo.ast.AST], names: Iterable[str], prefix: list[clingo.Symbol]
) -> tuple[str, int]:
    """File and line of the rule whose head is one of `names` and can start with the arguments
    `prefix` (line 0: none), e.g. the declaration of requirement R of policy P."""
    return _outright(
        (statement, atom.arguments[: len(prefix)])
        for statement, atom in headed(statements, names)
        if len(atom.arguments) >= len(prefix) and all(matches(a, s) for a, s in zip(atom.arguments, prefix))
    )


def locate(declaration: clingo.Symbol, statements: list[clingo.ast.AST]) -> tuple[str, int]:
    """File and line of the rule whose head can produce `declaration` (line 0: none)."""
    return _outright(
        (statement, getattr(statement.head.atom.symbol, "arguments", []))
        for statement in statements
        if statement.head.ast_type == clingo.ast.ASTType.Literal
        and matches(statement.head.atom.symbol, declaration)
    )


def _outright(found: Iterable[tuple[clingo.ast.AST, Iterable[clingo.ast.AST]]]) -> tuple[str, int]:
    """File and line of the first rule found whose head arguments hold the fewest variables.

    A head that names its arguments outright wins over one that takes them through a variable:
    `all_of(V, "eligibility", …) :- variant(V, "knee-resurfacing", …)` can start with
    ("hip-resurfacing", "eligibility") as far as its head tells, but it is knee's; hip's own
    declaration is `all_of("hip-resurfacing", "eligibility", …)`."""
    ranked = [
        (sum(a.ast_type == clingo.ast.ASTType.Variable for a in arguments), s) for s, arguments in found
    ]
    if not ranked:
        return "rules", 0
    _, statement = min(ranked, key=lambda rank_rule: rank_rule[0])  # min keeps the first of the fewest
    begin = statement.location.begin
    return begin.filename, begin.line


def matches(term: clingo.ast.AST, symbol: clingo.Symbol) -> bool:
    kind = term.ast_type
    T = clingo.ast.ASTType
    if kind == T.Variable:
        return True
    if kind == T.SymbolicTerm:
        return bool(term.symbol == symbol)
    if kind == T.Pool:
        return any(matches(alternative, symbol) for alternative in term.arguments)
    if kind == T.Function:
        if symbol.type != clingo.SymbolType.Function or term.name != symbol.name:
            return False
        if len(term.arguments) != len(symbol.arguments):
            return False
        return all(matches(a, s) for a, s in zip(term.arguments, symbol.arguments))
    return kind in (T.BinaryOperation, T.UnaryOperation, T.Interval)  # computed: cannot tell
