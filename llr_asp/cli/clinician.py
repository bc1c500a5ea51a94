"""The clinicians' commands: explain, whatif, next and ask, each a thin call into the library."""

from __future__ import annotations

import datetime
import enum
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..core.documents import read_patient
from ..core.errors import UsageError
from ..core.reasoner import Reasoner
from .app import (
    AsOfOption,
    Format,
    FormatOption,
    PatientArgument,
    RecordPolicyOption,
    RulesOption,
    app,
    as_of,
    console,
    print_json,
    print_per_policy,
    user_errors,
)

if TYPE_CHECKING:  # the session's types, imported when a session starts
    from ..core.ruleset import Field, Value
    from ..views.questionnaire import Keeper


class ExplainFormat(str, enum.Enum):
    text = "text"
    json = "json"
    letter = "letter"
    markdown = "markdown"
    fhir = "fhir"


EVERY_POLICY = (
    "The record names no policy and none was given (--policy), so every policy was evaluated: "
    "read the one for the procedure requested."
)


@app.command()
def explain(
    patient: PatientArgument,
    policy: RecordPolicyOption = None,
    format: Annotated[
        ExplainFormat,
        typer.Option(
            "--format",
            "-f",
            help="text for people; json for programs; letter: plain text to paste into a clinical "
            "record or a referral (dated, in words, no markup; about one procedure: the record's, or "
            "--policy); markdown: the same letter as Markdown; "
            "fhir: a QuestionnaireResponse with the answers and the decisions.",
        ),
    ] = ExplainFormat.text,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="Text, markdown: also expand requirements that are not a reason for the result."
        ),
    ] = False,
    receipt: Annotated[
        Optional[Path],
        typer.Option(
            "--receipt",
            metavar="KEY",
            help="Sign each decision with the Ed25519 key in KEY (`llr-asp receipt key KEY` makes one): "
            'its receipt in the JSON ("receipt"), in the letter\'s footer, or after the text.',
        ),
    ] = None,
    on: AsOfOption = None,
    rules: RulesOption = None,
) -> None:
    """Decide whether a patient is eligible, and show why or why not.

    Prints the decision (eligible, not eligible, undetermined) for each policy, then a
    justification tree: every requirement met (✔), not met (✘) or unknown (?), the policy
    sentence it encodes, any interpretation the encoding makes, and the patient's values it used.
    An undetermined decision lists the answers still needed. A decision that would differ under
    another reasonable reading of the damaged policy text says so first, and names the reading
    (⚑); a record that contradicts a domain assumption gets a warning.
    """
    with user_errors():
        reasoner = Reasoner.load(rules)
        ruleset = reasoner.rules
        record = read_patient(patient, ruleset)
        decisions = reasoner.decide(record, reasoner.chosen(record, policy, as_of(on)))
        signed = _signed(receipt, record, decisions) if receipt is not None else {}
    if format is ExplainFormat.json:
        print_per_policy([_with_receipt(d.to_json(), signed.get(d.policy.id)) for d in decisions])
        return
    if format is ExplainFormat.fhir:
        from ..formats.fhir import decision_response

        print_json(decision_response(record, decisions, ruleset))
        return
    unnamed = EVERY_POLICY if policy is None and record.policy is None and len(decisions) > 1 else None
    if unnamed and format in (ExplainFormat.letter, ExplainFormat.markdown):
        # a letter goes into a record: about the procedure the patient is referred for, never
        # a verdict on another one (a hip ELIGIBLE above a knee patient's refusal: GP review)
        with user_errors():
            named = " or ".join(ruleset.policies)
            raise UsageError(
                f"{patient}: the record names no procedure, and a letter is about the one the "
                f"patient is referred for: give --policy {named} (or --policy all for every policy)"
            )
    if format is ExplainFormat.letter:
        from ..views.letter import plain_letter

        sys.stdout.write(
            plain_letter(
                decisions,
                ruleset,
                datetime.date.today(),
                full,
                receipts={p: r for p, (r, _) in signed.items()},
            )
        )
        _print_receipts(signed)  # no service log keeps it: the receipt itself, to verify
        return
    if format is ExplainFormat.markdown:
        from ..views.markdown import decision_markdown

        sys.stdout.write("\n---\n\n".join(decision_markdown(d, ruleset, full) for d in decisions))
        _print_receipts(signed)
        return
    from rich.text import Text

    from ..views.terminal import decision_view, print_all

    views: list[Any] = [Text(unnamed, style="bold")] if unnamed else []
    print_all(console(), [*views, *(decision_view(d, ruleset, full) for d in decisions)])
    _print_receipts(signed)


def _signed(key: Path, record: Any, decisions: list[Any]) -> dict[str, tuple[str, str]]:
    """Each decision's receipt and the salt its answers' hash is keyed with, signed with the key
    in `key` (no log: its prev is null, and the salt is printed beside it, not in it)."""
    from ..formats.receipts import answers_hash, claims_of, load_signer, new_salt

    signer = load_signer(key)
    signed = {}
    for d in decisions:
        salt = new_salt()
        signed[d.policy.id] = (signer.sign(claims_of(d, answers_hash(record, salt), None)), salt)
    return signed


def _with_receipt(said: dict[str, Any], receipt: tuple[str, str] | None) -> dict[str, Any]:
    return said if receipt is None else {**said, "receipt": receipt[0], "receipt_salt": receipt[1]}


def _print_receipts(signed: dict[str, tuple[str, str]]) -> None:
    for policy, (receipt, salt) in signed.items():
        sys.stdout.write(f"\nDecision receipt ({policy}): {receipt}\n")
        sys.stdout.write(f"Its salt (keep it apart from the receipt; verify needs it): {salt}\n")


@app.command()
def whatif(
    patient: PatientArgument,
    policy: RecordPolicyOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="List at most N sets of changes.")] = 5,
    format: FormatOption = Format.text,
    on: AsOfOption = None,
    rules: RulesOption = None,
) -> None:
    """What would have to change for the patient to be eligible.

    Lists every smallest set of changes (fewest fields touched) that makes the patient eligible,
    up to --limit, each value the nearest that qualifies (months -> 6, the lowest grade that
    qualifies). An unknown field may be set; a known immutable field (sex, knee compartments)
    never changes. When no change can help, says which requirement cannot be met and why.
    """
    from ..engines.whatif import WhatIfSearch
    from ..engines.whatif import whatif as find

    with user_errors():
        reasoner = Reasoner.load(rules)
        record = read_patient(patient, reasoner.rules)
        search = WhatIfSearch.load(rules)
        answers = [
            find(reasoner, search, record, p, limit) for p in reasoner.chosen(record, policy, as_of(on))
        ]
    if format is Format.json:
        print_per_policy([a.to_json() for a in answers])
        return
    from ..views.terminal import print_all, whatif_view

    print_all(console(), (whatif_view(a, reasoner.rules) for a in answers))


ReaskOption = Annotated[
    bool,
    typer.Option(
        "--reask-unknown",
        help="Ask again the fields the record gives as null (not known) that are still needed; "
        "without it, a null answer is never asked again.",
    ),
]


@app.command("next")
def next_question(
    patient: PatientArgument,
    policy: RecordPolicyOption = None,
    format: FormatOption = Format.text,
    reask: ReaskOption = False,
    on: AsOfOption = None,
    rules: RulesOption = None,
) -> None:
    """The next question to ask about the patient: none once nothing can change the decision.

    Asks only a field the record does not hold whose answer can still change the decision
    (`missing`), or settle a decision that rests on a contested reading of the policy text
    (`to_settle`); a field present as null was asked and is not known, and is asked again only
    with --reask-unknown. Of those, it picks the one whose possible answers leave the fewest
    questions still to ask under any reading, so the decision settles soonest. `llr-asp ask`
    puts these questions to a clinician one by one.
    """
    from ..engines.interview import Interviewer

    with user_errors():
        interviewer = Interviewer.load(rules)
        record = read_patient(patient, interviewer.rules)
        again = record.answered - set(record.values) if reask else ()
        steps = interviewer.next(record, interviewer.chosen(record, policy, as_of(on)), again)
    if format is Format.json:
        print_per_policy([s.to_json() for s in steps])
        return
    from ..views.terminal import next_view, print_all

    print_all(console(), (next_view(s) for s in steps))


@app.command()
def ask(
    policy: RecordPolicyOption = None,
    start: Annotated[
        Optional[Path],
        typer.Option(
            "--from",
            metavar="PARTIAL.json",
            help="Start from this patient record: its answers are not asked again.",
            show_default=False,
        ),
    ] = None,
    save: Annotated[
        Optional[Path],
        typer.Option(
            "--save",
            metavar="FILE",
            help="Write the answers to FILE after every answer: as a patient record, or, begun "
            "--from a FHIR QuestionnaireResponse, as that form with each answer given here dated, "
            "so that what was pre-filled from the EHR or answered long ago stays to confirm.",
            show_default=False,
        ),
    ] = None,
    reask: ReaskOption = False,
    rules: RulesOption = None,
) -> None:
    """Ask a clinician only the questions that matter, then show the decision.

    One question at a time, in the clinician's words with its choices; "unknown" is always an
    answer, and an answer that cannot be used is asked again with the reason. Questions come
    from `llr-asp next`, until every policy is decided or nothing useful is left to ask. Ends
    with the justification tree and, unless eligible, what would have to change (`whatif`).
    Prompts go to stderr, the result to stdout. Piped input gives one answer per line, so a
    session can be scripted; when the input ends first, the answers so far are kept (--save)
    and the exit code is 1.
    """
    from rich.text import Text

    from ..core.documents import is_response, record
    from ..core.documents import validate as read_document
    from ..core.patient import parse, read_text, validate
    from ..engines.interview import Interviewer
    from ..engines.whatif import WhatIfSearch, weighed
    from ..views.questionnaire import Questionnaire, line_reader, record_keeper, terminal_reader
    from ..views.terminal import decision_view, print_all, whatif_view

    prompts = console(stderr=True)
    finished = True
    with user_errors():
        interviewer = Interviewer.load(rules)
        document: dict[str, Any] = {} if start is None else parse(read_text(str(start)), str(start))
        # as every surface reads it: values no one confirmed (answers a form filler pre-filled from
        # the EHR, old answers) asked to confirm, and a form's answers for its own procedure alone
        # (a form still in progress is continued here, as $next-question continues it: drafts)
        given = read_document(document, interviewer.rules, str(start), drafts=True) if start else None
        filled = given.filled if given is not None else ()
        form = document if is_response(document) else None
        document = record(document, interviewer.rules, str(start))  # a FHIR response: its record
        begun = validate(document, interviewer.rules, str(start))  # a record, or one line saying why not
        chosen = interviewer.chosen(given or begun, policy)  # (a knee form for hip: one line, exit 2)
        if len(chosen) == 1:
            document.setdefault("policy", chosen[0].id)
        keep = None if save is None else record_keeper(save) if form is None else form_keeper(save, form)
        session = Questionnaire(
            interviewer, chosen, document, str(start or save or "questionnaire"), keep, filled
        )
        if reask:
            session.reask = set(session.patient.answered - set(session.patient.values))
        if sys.stdin is None:
            raise UsageError("standard input is closed: ask reads the answers there (pipe them in)")
        read = terminal_reader(prompts) if sys.stdin.isatty() else line_reader(prompts, sys.stdin)
        try:
            session.run(prompts, read)
        except (EOFError, KeyboardInterrupt):
            finished = False
    search = WhatIfSearch.load(rules)
    views: list[Any] = []
    for decision in interviewer.decide(session.patient, chosen):
        views.append(decision_view(decision, interviewer.rules))
        if decision.decision != "eligible":
            views.append(whatif_view(weighed(search, session.patient, decision), interviewer.rules))
    print_all(console(), views)
    if save is not None:
        prompts.print(Text(f"Answers saved to {save}", style="dim"), soft_wrap=True)
    if not finished:
        again = f" (go on with --from {save})" if save else " (use --save to keep the answers)"
        ended = Text(f"The answers ended before the questionnaire did{again}.", style="bold yellow")
        prompts.print(ended, soft_wrap=True)
        raise typer.Exit(1)


def form_keeper(path: Path, form: dict[str, Any]) -> Keeper:
    """A questionnaire session's Keeper for one begun from a FHIR QuestionnaireResponse: the form,
    each answer given in the session in place of its item and dated (formats.fhir.with_answer, as
    the page keeps a pasted form), written to `path` after every answer. Never a plain record:
    that would make what was pre-filled from the EHR, or answered long ago, the clinician's now."""
    from ..formats.fhir import with_answer
    from ..views.questionnaire import write_record

    kept = [form]

    def keep(document: dict[str, Any], field: Field | None, value: Value | None) -> None:
        if field is not None:
            kept[0] = with_answer(kept[0], field, value)
        write_record(path, kept[0])

    return keep
