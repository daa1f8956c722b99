"""How scenario results read: the table a tester sees, and JUnit XML for a CI system."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from orchestrator.sandbox.scenario_runner import ScenarioResult


def render(result: ScenarioResult) -> str:
    lines = [f"{'PASS' if result.ok else 'FAIL'}  {result.name}  ({result.path}, "
             f"{result.seconds:.1f}s)"]  # fmt: skip
    for s in result.steps:
        lines.append(f"   {s.index:>3}  {'ok ' if s.ok else 'ERR'}  {s.action}")
        if s.note:
            lines.append(f"             · {s.note}")
        if s.outcome:
            lines.append(f"             → {s.outcome}")
        for problem in s.problems:
            first, *rest = problem.split("\n")
            lines.append(f"             ✗ {first}")
            lines += [f"               {r.strip()}" for r in rest]
        if s.snapshot:
            lines.append(f"             after step {s.index}:")
            lines += [f"               {line}" for line in s.snapshot]
    not_run = result.total_steps - len(result.steps)
    if not_run > 0 and result.steps:
        lines.append(f"         {not_run} later step(s) not run (--keep-going runs them)")
    if result.error:
        lines.append("         scenario error:")
        lines += [f"           {line}" for line in result.error.split("\n")]
    return "\n".join(lines)


def junit(results: Sequence[ScenarioResult], path: Path) -> None:
    """One <testsuite> per scenario file, one <testcase> per step (steps not run: skipped)."""
    root = ET.Element("testsuites", name="scenarios")
    total = failures = errors = skipped = 0
    for r in results:
        suite = ET.SubElement(root, "testsuite", name=r.name, file=r.path)
        classname = Path(r.path).stem
        cases = 0
        s_fail = s_err = s_skip = 0
        if r.error:
            case = ET.SubElement(suite, "testcase", classname=classname, name="load", time="0")
            ET.SubElement(case, "error", message=r.error.split("\n")[0]).text = r.error
            cases, s_err = 1, 1
        for s in r.steps:
            case = ET.SubElement(
                suite, "testcase", classname=classname,
                name=f"step {s.index}: {s.action}", time=f"{s.seconds:.3f}",
            )  # fmt: skip
            cases += 1
            if not s.ok:
                s_fail += 1
                body = "\n".join([*s.problems, "", *s.snapshot])
                ET.SubElement(case, "failure", message=s.problems[0].split("\n")[0]).text = body
        for i in range(len(r.steps) + 1, r.total_steps + 1):
            if r.error:
                break
            case = ET.SubElement(suite, "testcase", classname=classname, name=f"step {i}")
            ET.SubElement(case, "skipped", message="not run after an earlier failure")
            cases += 1
            s_skip += 1
        suite.set("tests", str(cases))
        suite.set("failures", str(s_fail))
        suite.set("errors", str(s_err))
        suite.set("skipped", str(s_skip))
        suite.set("time", f"{r.seconds:.3f}")
        total, failures = total + cases, failures + s_fail
        errors, skipped = errors + s_err, skipped + s_skip
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    root.set("skipped", str(skipped))
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
