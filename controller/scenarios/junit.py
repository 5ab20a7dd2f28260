"""JUnit XML of a scenario run, for CI systems that show test results: one testcase per scenario file, a failure
naming the step and the expectation (with the ledger around it), an error for a file that does not load or a run
that could not go on, and each step's outcome in system-out."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from controller.scenarios.expectations import describe_entry
from controller.scenarios.results import ScenarioResult


def junit_xml(results: list[ScenarioResult]) -> str:
    failures = sum(r.status == "failed" for r in results)
    errors = sum(r.status == "error" for r in results)
    seconds = f"{sum(r.seconds for r in results):.3f}"
    suites = ET.Element("testsuites", name="adc scenarios", tests=str(len(results)), failures=str(failures),
                        errors=str(errors), time=seconds)  # fmt: skip
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="scenarios",
        tests=str(len(results)),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
        time=seconds,
        timestamp=datetime.now(UTC).replace(microsecond=0).isoformat(),
    )
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=_classname(result.path),
            name=f"{result.path.stem}: {result.name}",
            file=str(result.path),
            time=f"{result.seconds:.3f}",
        )
        if result.load_error is not None:
            first = result.load_error.problems[0]
            error = ET.SubElement(case, "error", type=result.load_error.code, message=str(first))
            error.text = result.summary()
        elif result.crash is not None:
            ET.SubElement(case, "error", type="crash", message=result.crash).text = result.crash
        elif result.failed_step is not None:
            failed = result.failed_step
            message = f"step {failed.step.number} ({failed.step.title}): {failed.failures[0]}"
            failure = ET.SubElement(case, "failure", type="expectation", message=message)
            context = "\n".join(f"  {describe_entry(e)}" for e in result.context)
            failure.text = result.summary() + ("\nledger around the step:\n" + context if context else "")
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(
            f"step {s.step.number} (line {s.step.line}) {s.step.title}: {s.outcome.describe()} [{s.at}]"
            for s in result.steps
        )
    for element in suites.iter():
        element.text = _clean(element.text) if element.text else element.text
        element.attrib = {key: _clean(value) for key, value in element.attrib.items()}
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _classname(path: Path) -> str:
    parts = [p for p in path.with_suffix("").parts if p not in ("", ".", "/")]
    return ".".join(parts[:-1]) or "scenarios"


_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _clean(text: str) -> str:
    """XML 1.0 cannot carry most control characters (a GS1 group separator in a scan, say): show them escaped."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
