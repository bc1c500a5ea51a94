"""The rules other people wrote, as checks on what llr-asp emits: each returns the problems found
(none: it conforms).

- CDS Hooks: the response, discovery and card rules of the specification (cds-hooks/docs
  current.md: "Use of JSON", "Card Attributes", "Link", "Extensions") and of its 3.0 logical
  models (HL7/cds-hooks input/fsh/logicals: a card's uuid is a uuid, discovery's version);
- FHIR: every resource validates against the R4B models of fhir.resources;
- SDC 4.0.0 invariants (HL7/sdc, tag 4.0.0, input/fsh/profiles): sdc-2 and sdc-3
  (SDCQuestionnaireCommon), sdc-base-1 and sdc-base-2 (SDCBaseQuestionnaire), sdc-adapt-1 and
  the adaptive profile's url/version ..0, derivedFrom 1..1, item.text 1..1
  (SDCQuestionnaireAdapt), authored 1..1 and sdcqr-2 (SDCQuestionnaireResponseCommon), and
  cnl-0, cnl-1.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

INDICATORS = ("info", "warning", "critical")
LINK_TYPES = ("absolute", "smart")
VERSION_ALGORITHM = "http://hl7.org/fhir/StructureDefinition/artifact-versionAlgorithm"
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


def empty_elements(node: Any, where: str = "") -> list[str]:
    """Where JSON elements are null or empty (`null`, `""`, `[]`, `{}`): prohibited by CDS Hooks
    ("Use of JSON") and by FHIR JSON alike."""
    if node is None or node in ("", [], {}):
        return [where or "(document)"]
    if isinstance(node, dict):
        return [p for key, value in node.items() for p in empty_elements(value, f"{where}.{key}".lstrip("."))]
    if isinstance(node, list):
        return [p for n, value in enumerate(node) for p in empty_elements(value, f"{where}[{n}]")]
    return []


def extension_problems(node: Any, where: str) -> list[str]:
    """CDS Hooks extensions: an object whose keys are namespaced (`prefix.name`)."""
    extension = node.get("extension") if isinstance(node, dict) else None
    if extension is None:
        return []
    if not isinstance(extension, dict):
        return [f"{where}.extension: not an object"]
    return [f"{where}.extension.{key}: not namespaced" for key in extension if "." not in key.strip(".")]


def required_card_problems(card: dict[str, Any], where: str = "card") -> list[str]:
    """A card's required attributes and their values (current.md "Card Attributes", "Link")."""
    problems = []
    summary = card.get("summary")
    if not isinstance(summary, str) or len(summary) >= 140:
        problems.append(f"{where}.summary: a string under 140 characters")
    if card.get("indicator") not in INDICATORS:
        problems.append(f"{where}.indicator: one of {INDICATORS}")
    source = card.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("label"), str):
        problems.append(f"{where}.source.label: required")
    if "detail" in card and not isinstance(card["detail"], str):
        problems.append(f"{where}.detail: Markdown text")
    for n, link in enumerate(card.get("links", [])):
        if not (isinstance(link.get("label"), str) and isinstance(link.get("url"), str)):
            problems.append(f"{where}.links[{n}]: label and url required")
        if link.get("type") not in LINK_TYPES:
            problems.append(f"{where}.links[{n}].type: one of {LINK_TYPES}")
        if "appContext" in link and link.get("type") != "smart":
            problems.append(f"{where}.links[{n}].appContext: only for smart links (cds-resp-3)")
    if card.get("suggestions") and "selectionBehavior" not in card:
        problems.append(f"{where}: suggestions without selectionBehavior (cds-resp-6)")
    return problems


def card_problems(card: dict[str, Any], where: str = "card") -> list[str]:
    """Everything the specification asks of a card: the required attributes, a UUID, no null or
    empty element, namespaced extension keys."""
    problems = required_card_problems(card, where) + empty_elements(card, where)
    if "uuid" in card:
        try:
            uuid.UUID(str(card["uuid"]))
        except ValueError:
            problems.append(f"{where}.uuid: not a UUID ({card['uuid']!r})")
    return problems + extension_problems(card, where)


def response_problems(body: dict[str, Any]) -> list[str]:
    """A CDS Service response: `cards` (empty allowed: no guidance), each card conforming, and
    every card's uuid distinct."""
    cards = body.get("cards")
    if not isinstance(cards, list):
        return ["cards: a list is required"]
    problems = [p for n, card in enumerate(cards) for p in card_problems(card, f"cards[{n}]")]
    uuids = [card.get("uuid") for card in cards if "uuid" in card]
    if len(set(uuids)) != len(uuids):
        problems.append("cards: uuids repeat")
    return problems


def discovery_problems(body: dict[str, Any]) -> list[str]:
    services = body.get("services")
    if not isinstance(services, list):
        return ["services: a list is required"]
    problems = empty_elements(services, "services") if services else []
    for n, service in enumerate(services):
        for required in ("hook", "id", "description"):
            if not isinstance(service.get(required), str):
                problems.append(f"services[{n}].{required}: required")
        if not all(isinstance(v, str) for v in service.get("prefetch", {}).values()):
            problems.append(f"services[{n}].prefetch: templates are strings")
        problems += extension_problems(service, f"services[{n}]")
    return problems


def fhir_problems(resource: dict[str, Any]) -> list[str]:
    """What the R4B model of the resource's type refuses, and any empty element."""
    problems = empty_elements(resource, resource.get("resourceType", "resource"))
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except Exception as error:  # the model's ValidationError, or an unknown resourceType
        problems.append(f"R4B: {error}")
    return problems


def sdc_questionnaire_problems(questionnaire: dict[str, Any]) -> list[str]:
    """The SDC 4.0.0 invariants of a (base) Questionnaire."""
    problems = fhir_problems(questionnaire)
    algorithms = [e for e in questionnaire.get("extension", []) if e.get("url") == VERSION_ALGORITHM]
    if "version" in questionnaire and not algorithms:
        problems.append("sdc-2: version without the artifact-versionAlgorithm extension")
    for algorithm in algorithms:
        coding = algorithm.get("valueCoding", {})
        if (coding.get("system"), coding.get("code")) != ("http://hl7.org/fhir/version-algorithm", "semver"):
            problems.append("sdc-3: semver is the preferred version algorithm")
        elif not SEMVER.match(str(questionnaire.get("version", ""))):
            problems.append(f"sdc-3: version {questionnaire.get('version')!r} is not semver, as claimed")
    name = questionnaire.get("name")
    if name is not None and not re.match(r"^[A-Z]([A-Za-z0-9_]){1,254}$", name):
        problems.append("cnl-0: name is not usable as an identifier")
    url = questionnaire.get("url")
    if url is not None and not re.match(r"^[^|# ]+$", url):
        problems.append("cnl-1: url holds | or # or a space")
    for entry in _items(questionnaire.get("item", [])):
        for option in entry.get("answerOption", []):
            coding = option.get("valueCoding")
            if coding is None:
                continue
            if "code" not in coding and "display" not in coding:
                problems.append(f"sdc-base-1: {entry['linkId']}: an option without code or display")
            if "code" in coding and "system" not in coding:
                problems.append(f"sdc-base-2: {entry['linkId']}: an option's code without a system")
    return problems


def adaptive_response_problems(response: dict[str, Any]) -> list[str]:
    """An adaptive QuestionnaireResponse (sdc-questionnaireresponse-adapt) and its contained
    Questionnaire (sdc-questionnaire-adapt)."""
    problems = fhir_problems(response)
    if "authored" not in response:
        problems.append("SDC QuestionnaireResponse: authored is 1..1")
    reference = response.get("questionnaire", "")
    forms = [r for r in response.get("contained", []) if r.get("resourceType") == "Questionnaire"]
    form = next((f for f in forms if f"#{f.get('id')}" == reference), None)
    if form is None:
        return [
            *problems,
            "sdc-adapt-1: the questionnaire is not a contained Questionnaire referenced as #id",
        ]
    problems += [p for p in sdc_questionnaire_problems(form) if not p.startswith("R4B")]
    for prohibited in ("url", "version"):
        if prohibited in form:
            problems.append(f"sdc-questionnaire-adapt: {prohibited} is ..0")
    if len(form.get("derivedFrom", [])) != 1:
        problems.append("sdc-questionnaire-adapt: derivedFrom is 1..1")
    problems += [
        f"sdc-questionnaire-adapt: item {e.get('linkId')} has no text"
        for e in _items(form.get("item", []))
        if "text" not in e
    ]
    links = [e.get("linkId") for e in _items(form.get("item", []))]
    problems += [f"que-2: linkId {link} repeats" for link in sorted(set(links)) if links.count(link) > 1]
    answered = [e["linkId"] for e in _items(response.get("item", [])) if e.get("answer")]
    if len(answered) != len(set(answered)):
        problems.append("sdcqr-2: an answered linkId repeats")
    return problems


def _items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [found for entry in items for found in [entry, *_items(entry.get("item", []))]]
