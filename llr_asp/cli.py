"""The `llr-asp` command: a thin shell over the library. Only this module prints and exits."""

from __future__ import annotations

import contextlib
import datetime
import enum
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .errors import LlrError
from .patient import json_schema, read_patient
from .reasoner import Reasoner
from .ruleset import load_rules

app = typer.Typer(
    name="llr-asp",
    help=(
        "Eligibility reasoner for NHS Leicester, Leicestershire and Rutland ICB commissioning "
        "policies (hip resurfacing ARP 55, knee resurfacing ARP 60). The policies are Answer Set "
        "Programming rules; clingo derives each decision with the reasons for it."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Format(str, enum.Enum):
    text = "text"
    json = "json"


RulesOption = Annotated[
    Optional[Path],
    typer.Option(
        "--rules",
        metavar="DIR",
        help="Use the rule set (.lp files) in DIR instead of the bundled one.",
        show_default=False,
    ),
]
FormatOption = Annotated[Format, typer.Option("--format", "-f", help="text for people, json for programs.")]


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the core's errors into one line on stderr and exit code 2."""
    try:
        yield
    except LlrError as error:
        typer.echo(f"llr-asp: error: {error}", err=True)
        raise typer.Exit(2) from None


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def _console() -> Any:
    from rich.console import Console  # imported only when people read the output

    return Console(highlight=False)


@app.command()
def explain(
    patient: Annotated[
        str,
        typer.Argument(
            metavar="PATIENT.json", help="The patient record (JSON), or - to read standard input."
        ),
    ],
    policy: Annotated[
        Optional[str],
        typer.Option(
            "--policy",
            "-p",
            help='Policy id (see `llr-asp policies`) or "all". Default: the record\'s "policy", else all.',
            show_default=False,
        ),
    ] = None,
    format: FormatOption = Format.text,
    full: Annotated[
        bool,
        typer.Option("--full", help="Text: also expand requirements that are not a reason for the result."),
    ] = False,
    rules: RulesOption = None,
) -> None:
    """Decide whether a patient is eligible, and show why or why not.

    Prints the decision (eligible, not eligible, undetermined) for each policy, then a
    justification tree: every requirement met (✔), not met (✘) or unknown (?), the policy
    sentence it encodes, any interpretation the encoding makes, and the patient's values it used.
    An undetermined decision lists the answers still needed.
    """
    with _user_errors():
        reasoner = Reasoner.load(rules)
        ruleset = reasoner.rules
        record = read_patient(patient, ruleset)
        decisions = reasoner.decide(record, reasoner.policies(policy or record.policy))
    if format is Format.json:
        objects = [d.to_json() for d in decisions]
        _print_json(objects[0] if len(objects) == 1 else objects)
        return
    from .render import decision_view, print_all

    print_all(_console(), (decision_view(d, ruleset, full) for d in decisions))


@app.command()
def schema(rules: RulesOption = None) -> None:
    """Print the JSON Schema of a patient record, derived from the rules' field declarations."""
    with _user_errors():
        _print_json(json_schema(load_rules(rules)))


@app.command()
def policies(format: FormatOption = Format.text, rules: RulesOption = None) -> None:
    """List the policies with reference, title and review date; flag reviews that are due."""
    today = datetime.date.today()
    with _user_errors():
        ruleset = load_rules(rules)
    if format is Format.json:
        _print_json(
            [
                {
                    "id": p.id,
                    "reference": p.reference,
                    "title": p.title,
                    "commissioner": p.commissioner,
                    "review": p.review,
                    "review_due": p.review_due(today),
                    "source": p.source,
                }
                for p in ruleset.policies.values()
            ]
        )
        return
    from .render import policies_table

    _console().print(policies_table(ruleset, today))


def main() -> None:
    app()
