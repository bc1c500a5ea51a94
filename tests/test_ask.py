"""`llr-asp ask` end to end: piped answers, a real terminal, bad answers, --from and --save."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from llr_asp import load_rules
from llr_asp.core.patient import Patient, validate
from llr_asp.core.ruleset import show
from llr_asp.engines.interview import Interviewer

RULES = load_rules()
INTERVIEWER = Interviewer(RULES)
runner = CliRunner()
ROUTE_C1 = Path(__file__).parent.parent / "examples" / "route-c1-pain.json"


def typed(value: Any) -> str:
    """How a clinician would type `value`."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return show(value)


def all_but_sex(tmp_path: Path) -> Path:
    """The route C1 example without its sex: the one question left for the hip policy."""
    document = json.loads(ROUTE_C1.read_text())
    del document["sex"], document["meta"]
    partial = tmp_path / "all-but-sex.json"
    partial.write_text(json.dumps(document))
    return partial


def answers_for(truth: Patient, policy: str, start: Patient | None = None) -> list[str]:
    """The lines that answer `ask`'s questions from `truth`, in the order it will ask them."""
    patient, lines = start or Patient(truth.id, None, {}, frozenset()), []
    while (question := INTERVIEWER.next(patient, [RULES.policies[policy]])[0].question) is not None:
        value = truth.values.get(question.field)
        values = {**patient.values, **({question.field: value} if value is not None else {})}
        patient = Patient(patient.id, None, values, patient.answered | {question.field})
        lines.append(typed(value))
    return lines


def ask(*args: str, lines: list[str]) -> Any:
    from llr_asp.cli import app

    return runner.invoke(app, ["ask", *args], input="".join(f"{line}\n" for line in lines))


def test_piped_answers_end_with_the_tree_and_a_saved_record_explain_agrees_with(tmp_path: Path) -> None:
    truth = validate(json.loads(ROUTE_C1.read_text()), RULES, str(ROUTE_C1))
    lines = answers_for(truth, "hip-resurfacing")
    saved = tmp_path / "answers.json"
    result = ask("--policy", "hip-resurfacing", "--save", str(saved), lines=lines)
    assert result.exit_code == 0, result.output
    assert "Patient answers: ELIGIBLE" in result.stdout
    assert "Smallest changes" not in result.stdout  # eligible: nothing to change
    first = RULES.fields[INTERVIEWER.next(Patient("p", None, {}, frozenset()))[0].question.field]  # type: ignore[union-attr]
    assert first.question in result.stderr  # prompts on stderr, in the clinician's words
    record = json.loads(saved.read_text())
    assert record["policy"] == "hip-resurfacing"
    [decision] = INTERVIEWER.decide(validate(record, RULES, str(saved)), [RULES.policies["hip-resurfacing"]])
    assert decision.decision == "eligible"
    assert len(lines) < len(RULES.policies["hip-resurfacing"].fields())


def test_a_bad_answer_is_asked_again_with_the_reason(tmp_path: Path) -> None:
    saved = tmp_path / "p.json"
    partial = all_but_sex(tmp_path)
    result = ask(
        "-p", "hip-resurfacing", "--from", str(partial), "--save", str(saved), lines=["definitely", "female"]
    )
    assert result.exit_code == 0, result.output
    assert "Please answer" in result.stderr
    assert "answer one of female, male" in result.stderr
    assert json.loads(saved.read_text())["sex"] == "female"
    assert "NOT ELIGIBLE" in result.stdout
    assert "Individual Funding Request" in result.stdout


def test_a_refused_patient_ends_with_what_would_have_to_change(tmp_path: Path) -> None:
    refused = tmp_path / "refused.json"
    refused.write_text(
        json.dumps(
            {
                "id": "r",
                "knee": {"compartments_affected": 2},
                "conservative": {"months": 3, "contraindicated": False},
                "joint": {"destruction_risk": False},
                "independence": {"immediate_danger": False},
            }
        )
    )
    result = ask("-p", "knee-resurfacing", "--from", str(refused), lines=[])
    # the months already known refuse B under every reading (no urgent route can hold): nothing
    # is asked, and whatif says what would change: its smallest set waits for care and needs the
    # joint at risk of destruction (C6), so it is withheld (the seventeenth review's F6), with what
    # to do should the joint come to be at risk, and the care to give meanwhile
    assert result.exit_code == 0, result.output
    assert "Question 1" not in result.stderr
    said = " ".join(result.stdout.split())
    assert "conservative care went from 3 months to 6 months" not in said
    assert "should the patient come to meet C6, ask the ICB now" in said
    assert "Meanwhile, a step you can take: assessed by MSK Services" in said


def test_from_a_partial_record_asks_neither_its_answers_nor_its_unknowns(tmp_path: Path) -> None:
    partial = tmp_path / "partial.json"
    partial.write_text(
        json.dumps({"id": "p-7", "sex": "male", "pain": {"severity": None}, "meta": {"gp": "x"}})
    )
    start = validate(json.loads(partial.read_text()), RULES, str(partial))
    truth = validate(json.loads(ROUTE_C1.read_text()), RULES, str(ROUTE_C1))
    lines = answers_for(truth, "hip-resurfacing", start)
    saved = tmp_path / "done.json"
    result = ask("-p", "hip-resurfacing", "--from", str(partial), "--save", str(saved), lines=lines)
    assert result.exit_code == 0, result.output
    assert RULES.fields["sex"].question not in result.stderr
    assert RULES.fields["pain.severity"].question not in result.stderr
    record = json.loads(saved.read_text())
    assert (record["id"], record["meta"], record["pain"]["severity"]) == ("p-7", {"gp": "x"}, None)


def test_answers_that_end_early_are_kept_and_exit_1(tmp_path: Path) -> None:
    saved = tmp_path / "p.json"
    result = ask("-p", "knee-resurfacing", "--save", str(saved), lines=["unknown", "yes"])
    assert result.exit_code == 1
    assert "ended before the questionnaire did" in result.stderr
    assert f"--from {saved}" in result.stderr
    assert len(validate(json.loads(saved.read_text()), RULES, str(saved)).answered) == 2
    assert "UNDETERMINED" in result.stdout


def test_a_broken_partial_record_is_a_one_line_error(tmp_path: Path) -> None:
    partial = tmp_path / "partial.json"
    partial.write_text('{"pain": {"severity": "agony"}}')
    result = ask("--from", str(partial), lines=[])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "pain.severity" in result.stderr


def test_ask_in_a_real_terminal(tmp_path: Path) -> None:
    """A pseudo-terminal: prompts read with Rich, answers typed one at a time."""
    saved = tmp_path / "tty.json"
    partial = all_but_sex(tmp_path)
    command = [sys.executable, "-m", "llr_asp", "ask", "-p", "hip-resurfacing", "--from", str(partial)]
    command += ["--save", str(saved)]
    main, child = pty.openpty()
    env = {**os.environ, "COLUMNS": "80", "TERM": "xterm"}
    process = subprocess.Popen(command, stdin=child, stdout=child, stderr=child, env=env, close_fds=True)
    os.close(child)
    transcript = b""

    def read_until(marker: bytes, timeout: float = 30) -> None:
        nonlocal transcript
        deadline = time.monotonic() + timeout
        while marker not in transcript and time.monotonic() < deadline:
            if select.select([main], [], [], 0.2)[0]:
                try:
                    transcript += os.read(main, 4096)
                except OSError:
                    break
        assert marker in transcript, transcript.decode(errors="replace")

    read_until(b"> ")
    os.write(main, b"nonsense\r")
    read_until(b"Please answer")
    transcript = b""
    os.write(main, b"female\r")
    read_until(b"NOT ELIGIBLE")
    assert process.wait(timeout=30) == 0
    os.close(main)
    assert json.loads(saved.read_text())["sex"] == "female"


def test_a_session_begun_from_a_form_saves_the_form_so_a_prefilled_value_stays_to_confirm(
    tmp_path: Path,
) -> None:
    """Twenty-fifth review, H1: `ask --from FORM --save FILE` wrote a plain record, so the sex the
    form filler pre-filled from the EHR became the clinician's answer: resumed with --from FILE,
    the session asked nothing and refused a woman robustly on the EHR's word. The form is kept:
    what no one answered here keeps its source, and an answer given here is dated and the
    clinician's."""
    from llr_asp import Reasoner
    from llr_asp.core.documents import ANSWERED, INFORMATION_ORIGIN
    from llr_asp.core.documents import validate as read_document
    from llr_asp.formats.fhir import decision_response

    hip = RULES.policies["hip-resurfacing"]
    patient = validate({**json.loads(ROUTE_C1.read_text()), "sex": "female"}, RULES, "t")
    form = decision_response(patient, Reasoner(RULES).decide(patient, [hip]), RULES)
    form.pop("extension")
    for item in form["item"]:
        if item["linkId"] == "sex":  # pre-filled from the EHR, left as it was (DTR's `auto`)
            item["extension"] = [
                {"url": INFORMATION_ORIGIN, "extension": [{"url": "source", "valueCode": "auto"}]}
            ]
    start, saved = tmp_path / "form.json", tmp_path / "saved.json"
    start.write_text(json.dumps(form))
    stopped = ask("-p", "hip-resurfacing", "--from", str(start), "--save", str(saved), lines=[])
    assert stopped.exit_code == 1 and json.loads(saved.read_text())["resourceType"] == "QuestionnaireResponse"
    resumed = ask("-p", "hip-resurfacing", "--from", str(saved), lines=[])
    assert "What is the patient's sex?" in resumed.stderr and "pre-filled from the EHR" in resumed.stderr
    answered = ask("-p", "hip-resurfacing", "--from", str(saved), "--save", str(saved), lines=["female"])
    assert answered.exit_code == 0, answered.output
    [sex] = [i for i in json.loads(saved.read_text())["item"] if i["linkId"] == "sex"]
    assert sex["extension"][0]["url"] == ANSWERED  # the clinician's, dated: no longer DTR's `auto`
    assert read_document(json.loads(saved.read_text()), RULES, "saved").filled == ()


def test_a_form_for_one_procedure_is_never_asked_for_another(tmp_path: Path) -> None:
    """Twenty-sixth review, H1: `ask --from` a knee form with `-p hip-resurfacing` asked the ARP 55
    sex question and decided hip ELIGIBLE from the knee's pain, function and radiology; without
    `-p` it asked for both policies. Refused for another procedure, as every surface refuses it;
    without `-p`, the form's own procedure alone."""
    from llr_asp import Reasoner
    from llr_asp.formats.fhir import decision_response

    knee = RULES.policies["knee-resurfacing"]
    patient = validate({**json.loads(ROUTE_C1.read_text()), "sex": None}, RULES, "t")
    form = decision_response(patient, Reasoner(RULES).decide(patient, [knee]), RULES)
    form.pop("extension")
    start = tmp_path / "knee.json"
    start.write_text(json.dumps(form))
    refused = ask("-p", "hip-resurfacing", "--from", str(start), lines=["male"])
    assert refused.exit_code == 2 and refused.stdout == "", refused.output
    assert "given for the knee-resurfacing questionnaire" in refused.stderr
    own = ask("--from", str(start), lines=["male"])
    assert "Questionnaire: ARP 60." in own.stderr and "ARP 55" not in own.output, own.output


def test_a_form_in_progress_is_continued(tmp_path: Path) -> None:
    """Twenty-seventh review, M3: `ask --from` a form still in progress (a $next-question step, a
    DTR form left half-way) was refused ('finish it, then decide'), though the documentation
    says ask continues it, as $next-question does. Continued, its answers not asked again."""
    from llr_asp import Reasoner
    from llr_asp.formats.fhir import decision_response

    hip = RULES.policies["hip-resurfacing"]
    patient = validate({**json.loads(ROUTE_C1.read_text()), "sex": None}, RULES, "t")
    form = decision_response(patient, Reasoner(RULES).decide(patient, [hip]), RULES)
    form.pop("extension")
    form["status"] = "in-progress"
    form["item"] = [i for i in form["item"] if i["linkId"] != "sex"]  # not asked yet
    start = tmp_path / "half-way.json"
    start.write_text(json.dumps(form))
    result = ask("--from", str(start), lines=["male"])
    assert result.exit_code == 0, result.output
    assert "What is the patient's sex?" in result.stderr and "Question 2" not in result.stderr
    assert "ELIGIBLE" in result.stdout
