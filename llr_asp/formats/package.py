"""Da Vinci DTR's `$questionnaire-package` (DTR 2.x, `[base]/Questionnaire/$questionnaire-package`):
the forms a DTR client renders, each in a Bundle of its own.

The input is a Parameters (dtr-qpackage-input-parameters): the `questionnaire` canonicals wanted
(llr-asp's URNs, `|version` allowed); with none, the forms of the `order` resources, whose
ServiceRequest codes name the policies that decide them (the rules' `procedure/4`: each policy's
adaptive form, as its CDS card links it). `coverage`, `context` and `changedsince` are read by no
policy and set aside. Each form becomes one `PackageBundle` part, in the order asked (the DTR app
renders the first): a `collection` Bundle holding the Questionnaire.
llr-asp's forms need no CQL Library or ValueSet (their answers are coded inline), so the Bundle
holds the Questionnaire alone.
"""

from __future__ import annotations

from typing import Any

from ..core.documents import form_of, shaped
from ..core.errors import InputError, UsageError
from ..core.ruleset import RuleSet
from .fhir import questionnaire_version

INPUT = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/dtr-qpackage-input-parameters"
OUTPUT = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/dtr-qpackage-output-parameters"


def requested(parameters: Any, rules: RuleSet, source: str = "request body") -> list[tuple[str, bool]]:
    """The forms a `$questionnaire-package` call asks for, as (policy id or "all", adaptive),
    in the order asked, each once: its canonicals, else its orders' forms. Raises InputError
    for a body that is not such a call, UsageError (404) for a canonical or an order no policy
    of these rules has."""
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
        raise InputError(
            source, "resourceType", "expected a Parameters resource (dtr-qpackage-input-parameters)"
        )
    named: list[tuple[str, bool]] = []
    ordered: list[tuple[str, bool]] = []
    listed = shaped(parameters.get("parameter", []), list, source, "parameter", "a list of parameters")
    for n, parameter in enumerate(listed):
        at = f"parameter[{n}]"
        shaped(parameter, dict, source, at, "a parameter object")
        if parameter.get("name") == "questionnaire":
            canonical = shaped(
                parameter.get("valueCanonical"),
                str,
                source,
                f"{at}.valueCanonical",
                "a Questionnaire's canonical",
            )
            named.append(_form(canonical, rules))
        elif parameter.get("name") == "order":
            resource = shaped(parameter.get("resource"), dict, source, f"{at}.resource", "an order resource")
            ordered += [(policy, True) for policy in _ordered(resource, rules, source, f"{at}.resource")]
    named = named or ordered  # the canonicals asked for; else the orders' forms
    if not named:
        raise InputError(
            source,
            "parameter",
            'name the forms: a "questionnaire" canonical (see /fhir/Questionnaire) or an "order" '
            "(a ServiceRequest for a procedure a policy decides)",
        )
    return list(dict.fromkeys(named))


def _form(canonical: str, rules: RuleSet) -> tuple[str, bool]:
    named = form_of(canonical)
    version = canonical.split("|", 1)[1] if "|" in canonical else None
    if (
        named is None
        or named[0] not in (*rules.policies, "all")
        or version not in (None, questionnaire_version(rules))
    ):
        raise UsageError(
            f"no Questionnaire {canonical!r} here: llr-asp's are urn:llr-asp:questionnaire:<policy or all>"
            f"[-adaptive], version {questionnaire_version(rules)} (search /fhir/Questionnaire)"
        )
    return named


def _ordered(resource: dict[str, Any], rules: RuleSet, source: str, at: str) -> list[str]:
    """The families whose procedures a ServiceRequest orders (none: UsageError)."""
    if resource.get("resourceType") != "ServiceRequest":
        raise InputError(
            source, f"{at}.resourceType", "expected a ServiceRequest (llr-asp decides procedures)"
        )
    code = shaped(resource.get("code") or {}, dict, source, f"{at}.code", "a CodeableConcept object")
    coded = set()
    for n, coding in enumerate(shaped(code.get("coding") or [], list, source, f"{at}.code.coding", "a list")):
        shaped(coding, dict, source, f"{at}.code.coding[{n}]", "a Coding object")
        coded.add((coding.get("system"), coding.get("code")))
    families = [
        rules.policies[policy].family
        for policy, codes in rules.procedures.items()
        if any((system, code) in coded for system, code, _ in codes)
    ]
    if not families:
        raise UsageError(f"{at}: no policy here decides that order's code (its code.coding)")
    return list(dict.fromkeys(families))


def package(forms: list[dict[str, Any]], base: str) -> dict[str, Any]:
    """The operation's answer: a PackageBundle per form, each a collection Bundle."""
    return {
        "resourceType": "Parameters",
        "meta": {"profile": [OUTPUT]},
        "parameter": [
            {
                "name": "PackageBundle",
                "resource": {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [{"fullUrl": f"{base}/Questionnaire/{form['id']}", "resource": form}],
                },
            }
            for form in forms
        ],
    }
