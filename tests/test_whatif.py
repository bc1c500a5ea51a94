"""`llr-asp whatif`: the smallest change sets are minimal (brute force agrees), each makes the
patient eligible, and immutable fields never change."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from pathlib import Path

import pytest
from helpers import decision as oracle
from helpers import outcome_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiers import examples
from typer.testing import CliRunner

from llr_asp import Patient, Reasoner, RuleSet, read_patient, validate
from llr_asp.cli import app
from llr_asp.core.ruleset import Value
from llr_asp.engines.whatif import WhatIf, WhatIfSearch, whatif

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.json"))
REASONER = Reasoner.load()


@pytest.fixture(scope="module")
def search(rules: RuleSet) -> WhatIfSearch:
    return WhatIfSearch.load()


def respects(before: Mapping[str, Value], after: Mapping[str, Value]) -> bool:
    """Whether a change respects the domain assumption, as DESIGN §5 states it (temporal): no
    months of conservative care are added while it is contra-indicated now."""
    months = before.get("conservative.months")
    added = months is not None and after.get("conservative.months", months) > months  # type: ignore[operator]
    return not (after.get("conservative.contraindicated") is True and added)


def brute_minimum(
    rules: RuleSet, policy_id: str, values: Mapping[str, Value], most: int
) -> set[frozenset[str]]:
    """Every smallest set of fields (up to `most`) whose change makes the patient eligible
    while respecting the domain assumptions (the changed patient of whatif.lp does)."""
    policy = rules.policies[policy_id]
    free = [f for f in rules.fields if f in policy.fields()]
    free = [f for f in free if not (rules.fields[f].immutable and f in values)]
    for size in range(most + 1):
        found = set()
        for fields in itertools.combinations(free, size):
            options = [[v for v in outcome_values(rules, f) if v != values.get(f)] for f in fields]
            for choice in itertools.product(*options):
                changed = {**values, **dict(zip(fields, choice))}
                if oracle(rules, policy, changed) == "eligible" and respects(values, changed):
                    found.add(frozenset(fields))
                    break
        if found:
            return found
    return set()


def apply(patient: Patient, answer: WhatIf) -> list[dict[str, Value]]:
    return [{**patient.values, **{c.field: c.after for c in changes}} for changes in answer.counterfactuals]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_get_minimal_changes_that_work(
    path: Path, rules: RuleSet, reasoner: Reasoner, search: WhatIfSearch
) -> None:
    patient = read_patient(str(path), rules)
    for policy in rules.policies.values():
        answer = whatif(reasoner, search, patient, policy, limit=50)
        if answer.decision == "eligible":
            assert answer.counterfactuals == () and answer.blocker is None
            continue
        for values in apply(patient, answer):  # applied, every set makes the patient eligible
            assert oracle(rules, policy, values) == "eligible"
        sizes = {len(changes) for changes in answer.counterfactuals}
        if answer.withheld is not None:  # an urgent route is met: no set waits for more care
            assert not any(c.caution and c.caution.met for s in answer.counterfactuals for c in s)
            continue
        if answer.blocker is not None:
            assert brute_minimum(rules, policy.id, patient.values, 2) == set()
            continue
        assert len(sizes) == 1
        [size] = sizes
        if size <= 2:  # brute force stays cheap up to two fields
            expected = brute_minimum(rules, policy.id, patient.values, size)
            assert {frozenset(c.field for c in changes) for changes in answer.counterfactuals} == expected


def test_immutable_fields_never_change(rules: RuleSet, reasoner: Reasoner, search: WhatIfSearch) -> None:
    woman = read_patient(str(EXAMPLES[0].parent / "refused-hip-female.json"), rules)
    answer = whatif(reasoner, search, woman, rules.policies["hip-resurfacing"])
    assert answer.counterfactuals == ()
    assert answer.blocker is not None and answer.blocker.requirement == "no_contraindication"
    assert answer.blocker.fixed == (("sex", "female"),)
    unknown = read_patient(str(EXAMPLES[0].parent / "undetermined-knee-compartments.json"), rules)
    answer = whatif(reasoner, search, unknown, rules.policies["knee-resurfacing"])
    assert [[c.to_json() for c in s] for s in answer.counterfactuals] == [
        [
            {"field": "knee.compartments_affected", "from": None, "to": 1, "kind": "answer"}
        ]  # unknown may be set
    ]


def test_values_are_the_nearest_that_qualify(
    rules: RuleSet, reasoner: Reasoner, search: WhatIfSearch
) -> None:
    months = read_patient(str(EXAMPLES[0].parent / "refused-b-four-months.json"), rules)
    [[change]] = whatif(reasoner, search, months, rules.policies["hip-resurfacing"]).counterfactuals
    assert (change.field, change.before, change.after) == ("conservative.months", 4, 6)
    pain = read_patient(str(EXAMPLES[0].parent / "refused-c-moderate-pain.json"), rules)
    answer = whatif(reasoner, search, pain, rules.policies["hip-resurfacing"], limit=10)
    moves = {c.field: c.after for [c] in answer.counterfactuals}
    assert moves["pain.severity"] == "intense"  # the lowest grade C1 accepts


def test_limit_cuts_the_list(rules: RuleSet, reasoner: Reasoner, search: WhatIfSearch) -> None:
    pain = read_patient(str(EXAMPLES[0].parent / "refused-c-moderate-pain.json"), rules)
    policy = rules.policies["hip-resurfacing"]
    assert len(whatif(reasoner, search, pain, policy, limit=2).counterfactuals) == 2
    assert len(whatif(reasoner, search, pain, policy, limit=50).counterfactuals) > 2


SMALL = ["msk.assessed", "conservative.months", "pain.severity", "joint.destruction_risk", "sex"]


@settings(
    max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_patients_agree_with_brute_force(
    data: st.DataObject, rules: RuleSet, reasoner: Reasoner, search: WhatIfSearch
) -> None:
    """Every other field of the hip policy met; a few drawn, possibly unknown."""
    base: dict[str, Value] = {
        "msk.end_stage_oa": True,
        "msk.suitable_for_surgical_referral": True,
        "conservative.documented": True,
        "conservative.failed": True,
    }
    for field in SMALL:
        value = data.draw(st.one_of(st.none(), st.sampled_from(outcome_values(rules, field))), label=field)
        if value is not None:
            base[field] = value
    patient = Patient("p", None, base, frozenset(base))
    policy = rules.policies["hip-resurfacing"]
    answer = whatif(reasoner, search, patient, policy, limit=50)
    if answer.decision == "eligible" or answer.blocker is not None:
        return
    for values in apply(patient, answer):
        assert oracle(rules, policy, values) == "eligible"
    if answer.withheld is not None:  # an urgent route is met: no set waits for more care
        assert not any(c.caution and c.caution.met for s in answer.counterfactuals for c in s)
        return
    [size] = {len(c) for c in answer.counterfactuals}
    if size <= 2:
        expected = brute_minimum(rules, policy.id, base, size)
        assert {frozenset(c.field for c in changes) for changes in answer.counterfactuals} == expected


def test_whatif_cli() -> None:
    path = str(EXAMPLES[0].parent / "refused-b-four-months.json")
    result = CliRunner().invoke(app, ["whatif", path, "-p", "hip-resurfacing", "-f", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "patient": "refused-b-four-months",
        "policy": "hip-resurfacing",
        "decision": "not_eligible",
        "robust": True,
        "possible": ["not_eligible"],
        "counterfactuals": [[{"field": "conservative.months", "from": 4, "to": 6, "kind": "care"}]],
        "contested": [],
        "to_settle": [],
        "urgent": None,
    }
    path = str(EXAMPLES[0].parent / "refused-hip-female.json")
    result = CliRunner().invoke(app, ["whatif", path, "-p", "hip-resurfacing"], env={"COLUMNS": "80"})
    said = " ".join(result.stdout.split())  # the contra-indication named first, and why
    assert result.exit_code == 0 and "This procedure is not for the patient" in said
    assert "(sex is female), and no change is offered toward it" in said and "total hip replacement" in said


def test_an_unknown_field_is_as_far_as_its_value_from_the_bottom_of_the_scale(
    rules: RuleSet, reasoner: Reasoner, search: WhatIfSearch
) -> None:
    """A woman's knee: months, compartments and every route unknown but radiology (none). Each set
    answers the months (6) and the compartments (1) and one route; the sets come nearest first,
    an unknown field as far as its value from the bottom of its scale: significant instability
    (2 grades up), intense pain (3), then radiology, a finding to be otherwise (bug: an unknown
    field had no distance, so any qualifying value did, and the sets came in field order, pain
    first). The nearest of all, destruction risk (a yes: 0), is withheld: so changed, she meets
    C6, which says not to wait for B's months (the seventeenth review's F6)."""
    record = {
        "sex": "female",
        "msk": {"assessed": True, "end_stage_oa": True, "suitable_for_surgical_referral": True},
        "conservative": {"documented": True, "failed": True, "contraindicated": False},
        "pain": {"persistent": True},
        "function": {
            "impairment": "severe",
            "prevents_work_or_education": False,
            "prevents_domestic_or_carer": True,
        },
        "radiology": {"severity": "none"},
        "independence": {"replacement_would_relieve": True},
    }
    patient = validate(record, rules, "record")
    answer = whatif(reasoner, search, patient, rules.policies["knee-resurfacing"], limit=10)
    assert [[(c.field, c.after) for c in changes] for changes in answer.counterfactuals] == [
        [("conservative.months", 6), (route, value), ("knee.compartments_affected", 1)]
        for route, value in [
            ("joint.instability", "significant"),
            ("pain.severity", "intense"),
            ("radiology.severity", "moderate"),
        ]
    ]
    assert (answer.withheld, answer.advice) == ("C6", "find out")


CI2 = {  # eleventh review M7: eight months, not documented, failed, contra-indicated now; C1 met
    "id": "ci2",
    "sex": "male",
    "msk": {"assessed": True, "end_stage_oa": True, "suitable_for_surgical_referral": True},
    "conservative": {"months": 8, "documented": False, "failed": True, "contraindicated": True},
    "pain": {"severity": "intense", "persistent": True},
    "function": {"impairment": "moderate"},
}


def changed(record: dict[str, object], **values: object) -> dict[str, object]:
    """`record` with `group__field=value` set (None: unknown)."""
    copy = json.loads(json.dumps(record))
    for key, value in values.items():
        group, field = key.split("__")
        copy.setdefault(group, {})[field] = value
    return copy


BARRED = [
    # (policy, record, the steps offered meanwhile)
    ("hip-resurfacing", CI2, []),
    ("knee-resurfacing", changed(CI2, knee__compartments_affected=1), []),
    ("hip-resurfacing", changed(CI2, conservative__months=4), []),
    # an MSK assessment not yet made is care a contra-indication does not bar
    ("hip-resurfacing", changed(CI2, msk__assessed=False), [("msk.assessed", True)]),
    # contra-indicated, documented not known (four months: no set): documenting it is no step either
    (
        "hip-resurfacing",
        changed(CI2, conservative__months=4, conservative__documented=None, msk__assessed=False),
        [("msk.assessed", True)],
    ),
]


@pytest.mark.parametrize(("policy", "record", "steps"), BARRED)
def test_what_the_rules_bar_is_never_offered_as_a_step(
    rules: RuleSet,
    reasoner: Reasoner,
    search: WhatIfSearch,
    policy: str,
    record: dict[str, object],
    steps: object,
) -> None:
    """Eleventh review, HIGH (M7): months 8, not documented, failed, contra-indicated now: what-if
    said documentation "cannot be met: … none of it can now be documented that was not", then
    offered "a step you can take: conservative care detailed … went from no to yes" (JSON:
    steps [conservative.documented]), which made the patient ELIGIBLE. No change the rules bar
    (bars/4) is offered, as a step or in a set, on any surface (terminal, JSON and page take
    what-if from one core)."""
    patient = validate(record, rules, "record")
    answer = whatif(reasoner, search, patient, rules.policies[policy])
    assert [(c.field, c.after) for c in answer.steps] == steps
    raised = [c for s in answer.counterfactuals for c in s if c.before is not None]  # (an unknown
    # found out is no change the rules bar: care given before the contra-indication)
    for _, field, guard, value in rules.bars:
        if patient.values.get(guard) == value:
            assert field not in {c.field for c in [*answer.steps, *raised]}


def test_a_barred_step_is_never_said_at_the_terminal_or_in_json(tmp_path: Path) -> None:
    path = tmp_path / "ci2.json"
    path.write_text(json.dumps(CI2))
    said = CliRunner().invoke(app, ["whatif", str(path), "-p", "hip-resurfacing"], env={"COLUMNS": "300"})
    assert said.exit_code == 0 and "none of it can now be documented that was not" in said.stdout
    assert "a step you can take" not in said.stdout and "went from no to yes" not in said.stdout
    data = CliRunner().invoke(app, ["whatif", str(path), "-p", "hip-resurfacing", "-f", "json"])
    assert data.exit_code == 0 and "steps" not in json.loads(data.stdout)


H1 = {  # eleventh review M8: radiology severe, impairment severe, pain not known: C3 met
    "id": "h1-0",
    "sex": "male",
    "msk": {"assessed": True, "end_stage_oa": True, "suitable_for_surgical_referral": True},
    "conservative": {"months": 9, "documented": True, "failed": True},
    "radiology": {"severity": "severe"},
    "function": {"impairment": "severe"},
}
UNSETTLED = "no change to the record makes it certain"
SETTLING = [
    # (record, what the terminal's what-if says of settling the reading)
    (H1, "6 answers could settle the reading: pain, pain persistent, symptoms prevent routine work"),
    (changed(H1, pain__severity="severe"), "5 answers could settle the reading: pain persistent, symptoms"),
    # every answer given, C3 alone, read otherwise (only moderate impairment): nothing settles it
    (
        changed(
            H1,
            pain__severity="none",
            pain__persistent=False,
            function__prevents_work_or_education=False,
            function__prevents_domestic_or_carer=False,
            joint__instability="none",
            joint__destruction_risk=False,
        ),
        UNSETTLED,
    ),
]


@pytest.mark.parametrize(("record", "said"), SETTLING)
def test_whatif_names_the_answers_that_could_settle_the_reading(
    tmp_path: Path, record: dict[str, object], said: str
) -> None:
    """Eleventh review, MEDIUM (M8): eligible on the adopted reading only, pain not known: what-if
    said "no change to the record makes it certain: ask the ICB to confirm the reading" while
    explain and the page listed 6 answers that could settle it (pain severe and persistent gives a
    robust ELIGIBLE). What-if names the answers that could settle the reading (JSON: to_settle,
    as explain's), and says nothing makes it certain only when no answer can."""
    path = tmp_path / "record.json"
    path.write_text(json.dumps(record))
    shown = CliRunner().invoke(app, ["whatif", str(path), "-p", "hip-resurfacing"], env={"COLUMNS": "300"})
    text = " ".join(shown.stdout.split())
    assert shown.exit_code == 0 and "Eligible on the adopted reading only" in text and said in text, text
    assert (UNSETTLED in text) == (said == UNSETTLED)
    explained = CliRunner().invoke(app, ["explain", str(path), "-p", "hip-resurfacing", "-f", "json"])
    data = CliRunner().invoke(app, ["whatif", str(path), "-p", "hip-resurfacing", "-f", "json"])
    assert json.loads(data.stdout)["to_settle"] == json.loads(explained.stdout)["to_settle"]
