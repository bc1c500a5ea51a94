"""Typed errors of the core. The CLI turns each into one line on stderr and exit code 2."""

from __future__ import annotations


def printable(text: str) -> str:
    """`text` on one line: control characters (newlines, escape codes, bells) shown escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class LlrError(Exception):
    """Base class: something the user must fix before llr-asp can answer."""


class InputError(LlrError):
    """A patient document is unusable: where (file, JSON path) and how to fix it."""

    def __init__(self, source: str, path: str, problem: str) -> None:
        self.source = source
        self.path = path
        self.problem = problem
        where = f"{source}: {path}" if path else source
        super().__init__(printable(f"{where}: {problem}"))

    def __reduce__(self) -> tuple[type[InputError], tuple[str, str, str]]:
        """Re-created from its parts (a worker process sends it to the main one)."""
        return type(self), (self.source, self.path, self.problem)


class RuleError(LlrError):
    """A rule set is unusable: the rule file, its line where known, and what is wrong.

    `problems` holds every problem found, this one first (for reports that list them all).
    """

    def __init__(
        self, file: str, line: int | None, problem: str, problems: tuple[RuleError, ...] = ()
    ) -> None:
        self.file = file
        self.line = line
        self.problem = problem
        self.problems = problems or (self,)
        where = f"{file}:{line}" if line is not None else file
        more = f" ({len(problems) - 1} more problems)" if len(problems) > 1 else ""
        super().__init__(printable(f"{where}: {problem}{more}"))

    def __reduce__(self) -> tuple[type[RuleError], tuple[str, int | None, str, tuple[RuleError, ...]]]:
        """Re-created from its parts (a worker process sends it to the main one)."""
        others = () if self.problems == (self,) else self.problems
        return type(self), (self.file, self.line, self.problem, others)


class UsageError(LlrError):
    """A command-line request that cannot be honoured, such as an unknown policy."""

    def __init__(self, message: str) -> None:
        super().__init__(printable(message))


class NotInForce(LlrError):
    """No edition of the policy asked for is in force on the day asked for (exit 2, 422): the
    message names the earliest day one is."""

    def __init__(self, message: str) -> None:
        super().__init__(printable(message))


class WorkerError(LlrError):
    """A worker process of a batch run died or failed: the run stops, loudly."""

    def __init__(self, message: str) -> None:
        super().__init__(printable(message))


class DeclarationError(RuleError):
    """The rules parse and ground, but declarations fail the checks of vocabulary.lp."""
