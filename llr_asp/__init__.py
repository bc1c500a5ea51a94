"""llr-asp: NHS commissioning policies as Answer Set Programming rules.

The library in a few names::

    from llr_asp import load_rules, read_patient, Reasoner

    rules = load_rules()                      # the bundled rules, or load_rules(Path("my-rules"))
    patient = read_patient("patient.json", rules)
    for decision in Reasoner(rules).decide(patient):
        print(decision.policy.id, decision.decision, decision.missing)
"""

from .core.decision import Decision, Evidence, Node
from .core.documents import read_patient, validate
from .core.errors import InputError, LlrError, RuleError, UsageError
from .core.patient import Patient, json_schema
from .core.reasoner import Reasoner
from .core.ruleset import Field, Policy, Requirement, RuleSet, load_rules

__all__ = [
    "Decision",
    "Evidence",
    "Field",
    "InputError",
    "LlrError",
    "Node",
    "Patient",
    "Policy",
    "Reasoner",
    "Requirement",
    "RuleError",
    "RuleSet",
    "UsageError",
    "json_schema",
    "load_rules",
    "read_patient",
    "validate",
]


def __getattr__(name: str) -> str:
    """`llr_asp.__version__`: the installed version, read from the package metadata when asked
    (reading it costs milliseconds that `explain` does not spend)."""
    if name == "__version__":
        from .cli.install import version

        return version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
