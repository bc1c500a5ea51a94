"""Machine formats of a check report: JUnit XML for CI dashboards, SARIF 2.1.0 for annotations
on the `.lp` file and line."""

from __future__ import annotations

import importlib.metadata
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ..engines.check import STEPS, Report

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def junit_xml(report: Report) -> str:
    """One test suite per step, one test case per checked item, a failure element per failure."""
    suites = ET.Element("testsuites", name="llr-asp check")
    for step, description in STEPS.items():
        cases = [c for c in report.cases if c.step == step]
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=step,
            tests=str(len(cases)),
            failures=str(sum(1 for c in cases if c.failures)),
            errors="0",
            skipped="0",
        )
        ET.SubElement(ET.SubElement(suite, "properties"), "property", name="checks", value=description)
        for case in cases:
            element = ET.SubElement(suite, "testcase", classname=f"llr-asp.{step}", name=case.name)
            for failure in case.failures:
                where = _where(failure.file, failure.line)
                text = f"{where}: {failure.message}" if where else failure.message
                ET.SubElement(element, "failure", message=failure.message, type=failure.rule).text = text
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def sarif(report: Report) -> dict[str, Any]:
    """A SARIF log: each failure a result on its rule file and line (or example file)."""
    failures = report.failures()
    rule_ids = sorted({failure.rule for _, failure in failures})
    results = []
    for case, failure in failures:
        result: dict[str, Any] = {
            "ruleId": failure.rule,
            "level": "error",
            "message": {"text": f"{case.step}: {failure.message}"},
        }
        if failure.file:
            location: dict[str, Any] = {"artifactLocation": {"uri": _uri(failure.file)}}
            if failure.line:
                location["region"] = {"startLine": failure.line}
            result["locations"] = [{"physicalLocation": location}]
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "llr-asp",
                        "version": importlib.metadata.version("llr-asp"),
                        "rules": [
                            {
                                "id": rule,
                                "shortDescription": {"text": STEPS.get(rule, rule.replace("_", " "))},
                            }
                            for rule in rule_ids
                        ],
                    }
                },
                "results": results,
            }
        ],
    }


def _where(file: str | None, line: int | None) -> str:
    if not file:
        return ""
    return f"{file}:{line}" if line else file


def _uri(file: str) -> str:
    """A path relative to the working directory where it lies below it (as CI annotates)."""
    path = Path(file).resolve()
    try:
        return path.relative_to(Path(os.getcwd()).resolve()).as_posix()
    except ValueError:
        return path.as_uri()
