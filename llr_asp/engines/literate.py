"""The literate policy: every sentence of a policy's source text, in order, with what encodes it.

A sentence is found in the source text (whitespace aside, between word boundaries) and is:
- *encoded*: it is the sentence (text/3) of a requirement, which is shown with its parts that
  have no sentence of their own and the rules that declare them, quoted from the `.lp` files;
  its readings (reading/4, alternative/4, each alternative with the rules of its variant), its
  interpretations and text defects, and the `analyze` findings about those requirements;
- the policy's *title* (title/2);
- *explained*: the rules say why nothing encodes it (unencoded/4: background, definition,
  heading, connective, metadata, the web page);
- or *unexplained*: nothing encodes it and the rules say nothing of it, which is shown as such.
What follows the end of the policy text (source_ends/2) is the web page it was copied from.

The sentences, concatenated, are the source text, whitespace aside: nothing is dropped. Sentences
the rules quote that the source does not hold are listed apart.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import clingo

from ..core.errors import printable
from ..core.ruleset import Alternative, Policy, Reading, RuleSet, load_rules
from .analysis import Finding, analyze

WOVEN = ("text_defect", "interpretation", "contested_reading", "contested_combination")
"""Findings shown in their place (beside the defect, interpretation or reading they are
about; combinations of readings in a table of their own), not in a sentence's list of findings."""

DECLARATIONS = ("all_of", "any_of", "condition", "part", "background")
"""The predicates whose rules encode a requirement (quoted beside its sentence)."""


@dataclass(frozen=True)
class Quote:
    """A rule as written in its file: the whole lines it spans."""

    file: str  # relative to the rule set's directory
    line: int  # its first line
    text: str


@dataclass(frozen=True)
class Sentence:
    """A sentence of the source text and what the rules say of it."""

    text: str  # verbatim (whitespace as in the source)
    kind: str  # encoded | title | unexplained | a kind of unencoded/4 (background, definition, ...)
    why: str | None = None  # the reason the rules give (unencoded/4)
    requirements: tuple[str, ...] = ()  # encoded: the requirement whose sentence it is, then its parts
    policy_text: bool = True  # False: after the end of the policy text (source_ends/2)


@dataclass(frozen=True)
class Literate:
    """A policy as analysts read it: its sentences, and all the rules say of each."""

    rules: RuleSet
    policy: Policy
    source: Path
    found: bool  # whether the source text could be read
    sentences: tuple[Sentence, ...]
    unmatched: tuple[tuple[str, str], ...]  # (what the rules declare, the sentence) not in the source
    findings: tuple[Finding, ...]
    quotes: dict[str, tuple[Quote, ...]]  # requirement id -> the rules that declare it
    variant_quotes: dict[tuple[str, str], tuple[Quote, ...]]  # (reading, alternative) -> its rules

    def findings_about(self, sentence: Sentence) -> list[Finding]:
        """The findings about the sentence's requirements, but those woven into their place."""
        ids = set(sentence.requirements)
        return [f for f in self.findings if f.kind not in WOVEN and ids.intersection(f.requirements)]

    def policy_findings(self) -> list[Finding]:
        """The findings about the policy as a whole (a review due) or the rules (hygiene)."""
        return [f for f in self.findings if not f.requirements]

    def readings(self, sentence: Sentence) -> list[Reading]:
        ids = set(sentence.requirements)
        return [r for r in self.policy.readings.values() if r.requirement in ids]

    def note_finding(self, kind: str, rid: str, note: str) -> Finding | None:
        """The finding `analyze` made of a text defect or an interpretation (its witness)."""
        message = f"{rid}: {note}"
        return next(
            (f for f in self.findings if (f.kind, f.requirements, f.message) == (kind, (rid,), message)),
            None,
        )

    def reading_finding(self, reading: Reading, alternative: Alternative) -> Finding | None:
        """The finding `analyze` made of an alternative reading: the patients it decides otherwise."""
        said = f"decided otherwise under {reading.id}: {alternative.id}"
        for finding in self.findings:
            if finding.kind != "contested_reading" or finding.requirements != (reading.requirement,):
                continue
            meta = (finding.witness or {}).get("meta", {})
            unwitnessed = finding.witness is None and f"Alternative {alternative.id}:" in finding.message
            if meta.get("witness") == said or unwitnessed:
                return finding
        return None

    def refutes(self, sentence: Sentence) -> list[tuple[Reading, Alternative]]:
        """The alternative readings this sentence refutes for clinical use (refuted/4 quotes it)."""
        said = _squeeze(sentence.text)
        return [
            (reading, alternative)
            for reading in self.policy.readings.values()
            for alternative in reading.alternatives
            if said and alternative.refuted and said in _squeeze(alternative.refuted)
        ]

    def counts(self) -> dict[str, int]:
        """How many sentences of the policy text are encoded, explained or neither."""
        counted = {"encoded": 0, "explained": 0, "unexplained": 0}
        for sentence in self.sentences:
            if not sentence.policy_text:
                continue
            key = sentence.kind if sentence.kind in ("encoded", "unexplained") else "explained"
            if sentence.kind == "title":
                key = "encoded"
            counted[key] += 1
        return counted


def scope(alternative: Alternative) -> str:
    """The alternative's scope (scope/4): clinical (clinicians are told) or analysis."""
    return alternative.scope


def refuted_by(alternative: Alternative) -> str | None:
    """The policy sentence that refutes the alternative for clinical use (refuted/4)."""
    return alternative.refuted


def literate(
    rules: RuleSet,
    policy_id: str,
    findings: Sequence[Finding] | None = None,
    today: datetime.date | None = None,
) -> Literate:
    """The literate policy `policy_id` of `rules`. `findings`: those of `analyze` (default: run it)."""
    [policy] = rules.select(policy_id)
    if findings is None:
        findings = analyze(rules.directory, policy.id, today)[1]
    findings = tuple(f for f in findings if f.policy in (policy.id, None))
    facts = _declarations(rules, policy.id)
    source = rules.directory / policy.source
    try:
        text = source.read_text(encoding="utf-8-sig")
        found = True
    except (OSError, UnicodeDecodeError):
        text, found = "", False
    if found:
        sentences, unmatched = split(text, policy, facts["unencoded"], facts["source_ends"])
    else:
        sentences = tuple(
            Sentence(r.text, "encoded", requirements=_encoding(policy, r.id))
            for r in _in_order(policy)
            if r.text is not None
        )
        unmatched = ()
    quotes, variant_quotes = _quotes(rules, policy)
    return Literate(rules, policy, source, found, sentences, unmatched, findings, quotes, variant_quotes)


def _declarations(rules: RuleSet, policy: str) -> dict[str, list[tuple[str, ...]]]:
    """unencoded/4 and source_ends/2 of `policy`, read from the grounded rules."""
    control = rules.ground([])
    found: dict[str, list[tuple[str, ...]]] = {"unencoded": [], "source_ends": []}
    for name, arity in (("unencoded", 4), ("source_ends", 2)):
        for atom in control.symbolic_atoms.by_signature(name, arity):
            args = atom.symbol.arguments
            if args[0].type == clingo.SymbolType.String and args[0].string == policy:
                found[name].append(tuple(_said(a) for a in args[1:]))
    return found


def _said(symbol: clingo.Symbol) -> str:
    return printable(symbol.string) if symbol.type == clingo.SymbolType.String else str(symbol)


def _in_order(policy: Policy) -> Iterator[Any]:
    seen: set[str] = set()
    for requirement in policy.below(policy.root):
        if requirement.id not in seen:
            seen.add(requirement.id)
            yield requirement


def _encoding(policy: Policy, rid: str) -> tuple[str, ...]:
    """Requirement `rid` and the parts below it that have no sentence of their own."""
    found = [rid]
    for part in policy.requirements[rid].parts:
        if policy.requirements[part].text is None:
            found += [p for p in _encoding(policy, part) if p not in found]
    return tuple(found)


# -- the source text, sentence by sentence --------------------------------------------------------


@dataclass
class _Span:
    start: int  # in the normalised text
    end: int
    sentence: Sentence


def _normalised(text: str) -> tuple[str, list[int], set[int]]:
    """`text` with each run of whitespace (no-break spaces too) one space; where each of its
    characters is in `text`; and the spaces that stand for a run with a line break."""
    out: list[str] = []
    where: list[int] = []
    breaks: set[int] = set()
    for n, char in enumerate(text):
        if char.isspace():
            if out and out[-1] != " ":
                out.append(" ")
                where.append(n)
            if out and char in "\n\r":
                breaks.add(len(out) - 1)
        else:
            out.append(char)
            where.append(n)
    while out and out[-1] == " ":
        out.pop()
        where.pop()
    return "".join(out), where, breaks


def _squeeze(text: str) -> str:
    return " ".join(text.split())


def _occurrences(haystack: str, needle: str) -> Iterator[int]:
    """Where `needle` stands in `haystack` between word boundaries."""
    if not needle:
        return
    start = haystack.find(needle)
    while start >= 0:
        end = start + len(needle)
        before = haystack[start - 1] if start else " "
        after = haystack[end] if end < len(haystack) else " "
        if not (before.isalnum() and needle[0].isalnum()) and not (after.isalnum() and needle[-1].isalnum()):
            yield start
        start = haystack.find(needle, start + 1)


def _free(spans: list[_Span], start: int, end: int) -> bool:
    return all(end <= s.start or start >= s.end for s in spans)


def split(
    text: str,
    policy: Policy,
    unencoded: Iterable[tuple[str, ...]] = (),
    ends: Iterable[tuple[str, ...]] = (),
) -> tuple[tuple[Sentence, ...], tuple[tuple[str, str], ...]]:
    """The sentences of the source `text` of `policy`, and the sentences the rules declare that
    it does not hold."""
    flat, where, breaks = _normalised(text)
    spans: list[_Span] = []
    unmatched: list[tuple[str, str]] = []
    by_text: dict[str, list[str]] = {}
    for requirement in _in_order(policy):
        if requirement.text is not None:
            by_text.setdefault(_squeeze(requirement.text), []).append(requirement.id)
    for words, rids in sorted(by_text.items(), key=lambda item: -len(item[0])):
        place = next((s for s in _occurrences(flat, words) if _free(spans, s, s + len(words))), None)
        if place is None:
            unmatched += [(f"text/3 of {rid}", words) for rid in rids]
            continue
        requirements = tuple(dict.fromkeys(p for rid in rids for p in _encoding(policy, rid)))
        spans.append(_Span(place, place + len(words), Sentence("", "encoded", requirements=requirements)))
    for declared, kind, why in sorted(unencoded, key=lambda d: -len(d[0])):
        words = _squeeze(declared)
        places = [s for s in _occurrences(flat, words) if _free(spans, s, s + len(words))]
        if not places:
            unmatched.append((f"unencoded/4 ({kind})", words))
        spans += [_Span(s, s + len(words), Sentence("", kind, why)) for s in places]
    title = _squeeze(policy.title)
    place = next((s for s in _occurrences(flat, title) if _free(spans, s, s + len(title))), None)
    if place is not None:
        spans.append(_Span(place, place + len(title), Sentence("", "title", "The policy's title (title/2).")))
    end = len(flat)
    for (last,) in ends:
        words = _squeeze(last)
        place = next(_occurrences(flat, words), None)
        if place is None:
            unmatched.append(("source_ends/2", words))
        else:
            end = place + len(words)
    spans.sort(key=lambda s: s.start)
    pieces: list[tuple[int, int, Sentence]] = []
    position = 0
    for span in [*spans, _Span(len(flat), len(flat), Sentence("", ""))]:
        pieces += _gap(flat, breaks, position, span.start)
        if span.end > span.start:
            pieces.append((span.start, span.end, span.sentence))
        position = max(position, span.end)
    merged = _merge_marks(flat, pieces)
    sentences = []
    for start, stop, sentence in merged:
        verbatim = text[where[start] : where[stop - 1] + 1]
        after = start >= end
        if after and sentence.kind == "unexplained":
            why = "After the end of the policy text (source_ends/2): the web page it was copied from."
            sentence = Sentence("", "page", why)
        sentences.append(
            Sentence(verbatim, sentence.kind, sentence.why, sentence.requirements, policy_text=not after)
        )
    return tuple(sentences), tuple(unmatched)


def _gap(flat: str, breaks: set[int], start: int, stop: int) -> list[tuple[int, int, Sentence]]:
    """The text between two declared sentences, split at the source's line breaks and after a
    full stop, question or exclamation mark: each piece a sentence nothing encodes."""
    pieces: list[tuple[int, int, Sentence]] = []
    offset = start
    for n in range(start, stop):
        if flat[n] == " " and (n in breaks or flat[n - 1] in ".!?"):
            pieces += _trimmed(flat, offset, n)
            offset = n + 1
    return pieces + _trimmed(flat, offset, stop)


def _trimmed(flat: str, start: int, stop: int) -> list[tuple[int, int, Sentence]]:
    while start < stop and flat[start] == " ":
        start += 1
    while stop > start and flat[stop - 1] == " ":
        stop -= 1
    return [(start, stop, Sentence("", "unexplained"))] if stop > start else []


def _merge_marks(flat: str, pieces: list[tuple[int, int, Sentence]]) -> list[tuple[int, int, Sentence]]:
    """A piece with no letter or digit (a bullet's dash, an asterisk) joins the sentence after
    it (the last one, the sentence before)."""
    merged: list[tuple[int, int, Sentence]] = []
    carry: int | None = None
    for start, stop, sentence in pieces:
        if not any(c.isalnum() for c in flat[start:stop]):
            carry = start if carry is None else carry
            continue
        merged.append((start if carry is None else carry, stop, sentence))
        carry = None
    if carry is not None:
        if merged:
            start, _, sentence = merged[-1]
            merged[-1] = (start, pieces[-1][1], sentence)
        else:
            merged.append((carry, pieces[-1][1], Sentence("", "unexplained")))
    return merged


# -- the rules, quoted -----------------------------------------------------------------------------


def _quotes(
    rules: RuleSet, policy: Policy
) -> tuple[dict[str, tuple[Quote, ...]], dict[tuple[str, str], tuple[Quote, ...]]]:
    """The rules that declare each requirement of `policy`, and those of each alternative
    reading's variant, as written in the rule files."""
    from ..core.ruletext import headed, parse_rules

    files = [Path(f) for f in rules.files]
    lines = {str(f): f.read_text(encoding="utf-8").splitlines() for f in files}
    mine = clingo.String(policy.id)
    own: dict[str, list[Quote]] = {}
    variants: dict[tuple[str, str], list[Quote]] = {}
    alternatives = [(r.id, a.id) for r in policy.readings.values() for a in r.alternatives]
    for statement, atom in headed(parse_rules(files), DECLARATIONS):
        variant = _variant_literal(statement)
        quote = _quote(statement, lines, rules.directory)
        if variant is None:
            if len(atom.arguments) >= 2 and _matches(atom.arguments[0], mine):
                for rid in policy.requirements:
                    if _matches(atom.arguments[1], clingo.String(rid)):
                        own.setdefault(rid, []).append(quote)
            continue
        _, of_policy, point, alternative = variant
        if not _matches(of_policy, mine):
            continue
        for reading, aid in alternatives:
            if _matches(point, clingo.String(reading)) and _matches(alternative, clingo.String(aid)):
                variants.setdefault((reading, aid), []).append(quote)
    return {k: tuple(v) for k, v in own.items()}, {k: tuple(v) for k, v in variants.items()}


def _variant_literal(statement: Any) -> list[Any] | None:
    """The arguments of the variant/4 literal in a rule's body, if it has one."""
    import clingo.ast

    for literal in statement.body:
        if literal.ast_type != clingo.ast.ASTType.Literal:
            continue
        atom = literal.atom
        if atom.ast_type != clingo.ast.ASTType.SymbolicAtom:
            continue
        symbol = atom.symbol
        function = symbol.ast_type == clingo.ast.ASTType.Function
        if function and symbol.name == "variant" and len(symbol.arguments) == 4:
            return list(symbol.arguments)
    return None


def _matches(term: Any, symbol: clingo.Symbol) -> bool:
    from ..core.ruletext import matches  # clingo.ast: only the report needs the rules as syntax

    return matches(term, symbol)


def _quote(statement: Any, lines: dict[str, list[str]], directory: Path) -> Quote:
    begin, end = statement.location.begin, statement.location.end
    text = "\n".join(lines[begin.filename][begin.line - 1 : end.line])
    try:
        name = Path(begin.filename).resolve().relative_to(directory.resolve()).as_posix()
    except ValueError:
        name = begin.filename
    return Quote(name, begin.line, text)


def load(directory: Path | None, policy_id: str, today: datetime.date | None = None) -> Literate:
    """The literate policy of the rule set in `directory` (default: bundled)."""
    return literate(load_rules(directory), policy_id, today=today)
