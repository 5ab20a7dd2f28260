"""An HTML page of a scenario run, one file with no outside resources, to attach to a change or a validation
record: a summary of every scenario (what it covers, passed or not, steps, virtual and real time), then each
scenario's steps with their outcome, the virtual time, the ledger entries each step wrote, and for a failed step
the expectation that failed and the ledger around it."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from controller.scenarios.expectations import describe_entry
from controller.scenarios.results import ScenarioResult, StepResult
from controller.scenarios.values import format_duration

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem; color: #1b1f24; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { border-bottom: 1px solid #d8dee4; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f3f5f7; }
.passed { color: #116329; font-weight: 600; } .failed, .error { color: #a40e26; font-weight: 600; }
tr.bad td { background: #fff0f0; } .muted { color: #57606a; }
code, pre { font: 12px ui-monospace, monospace; } pre { background: #f6f8fa; padding: .5rem; overflow-x: auto; }
details summary { cursor: pointer; color: #0969da; }
"""


def html_report(results: list[ScenarioResult]) -> str:
    passed = sum(r.passed for r in results)
    generated = datetime.now(UTC).replace(microsecond=0).isoformat()
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>open-adc scenario run</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>open-adc scenario run</h1>",
        f"<p>{passed} of {len(results)} scenarios passed. <span class='muted'>Generated {generated}.</span></p>",
        _summary(results),
    ]
    parts += [_scenario(n, r) for n, r in enumerate(results, start=1)]
    parts.append("</body></html>")
    return "\n".join(parts)


def _summary(results: list[ScenarioResult]) -> str:
    rows = [
        "<table><tr><th>#</th><th>scenario</th><th>covers</th><th>result</th><th>steps</th>"
        "<th>virtual time</th><th>real time</th></tr>"
    ]
    for n, r in enumerate(results, start=1):
        rows.append(
            f"<tr><td>{n}</td><td><a href='#s{n}'>{escape(r.name)}</a><br><span class='muted'>{escape(str(r.path))}"
            f"</span></td><td>{escape(', '.join(r.covers))}</td><td class='{r.status}'>{r.status}</td>"
            f"<td>{len(r.steps)}/{r.total_steps}</td><td>{format_duration(r.virtual)}</td>"
            f"<td>{r.seconds:.2f} s</td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def _scenario(n: int, r: ScenarioResult) -> str:
    parts = [f"<h2 id='s{n}'>{n}. {escape(r.name)} <span class='{r.status}'>{r.status}</span></h2>"]
    parts.append(f"<p class='muted'>{escape(str(r.path))} · {escape(r.target)}</p>")
    if r.description:
        parts.append(f"<p>{escape(r.description)}</p>")
    if r.load_error is not None or r.crash is not None:
        parts.append(f"<pre>{escape(r.summary())}</pre>")
    if r.steps:
        parts.append("<table><tr><th>step</th><th>line</th><th>what</th><th>outcome</th><th>at (virtual)</th>"
                     "<th>ledger</th></tr>")  # fmt: skip
        parts += [_step(s) for s in r.steps]
        parts.append("</table>")
    if r.failed_step is not None and r.context:
        written = {e["seq"] for e in r.failed_step.entries}
        lines = [("&gt; " if e["seq"] in written else "  ") + escape(describe_entry(e)) for e in r.context]
        parts.append("<p>Ledger around the failed step (&gt; marks its own entries):</p>")
        parts.append("<pre>" + "\n".join(lines) + "</pre>")
    not_run = r.total_steps - len(r.steps)
    if not_run and r.load_error is None:
        parts.append(f"<p class='muted'>{not_run} later step(s) not run.</p>")
    return "\n".join(parts)


def _step(s: StepResult) -> str:
    outcome = escape(s.outcome.describe())
    if s.failures:
        outcome += "".join(f"<br><b>{escape(str(f))}</b>" for f in s.failures)
    entries = ""
    if s.entries:
        listed = "<br>".join(escape(describe_entry(e)) for e in s.entries)
        entries = f"<details><summary>{len(s.entries)} entries</summary><code>{listed}</code></details>"
    css = " class='bad'" if s.failures else ""
    at = s.at[:19].replace("T", " ")
    return (
        f"<tr{css}><td>{s.step.number}</td><td>{s.step.line}</td><td>{escape(s.step.title)}</td>"
        f"<td>{outcome}</td><td>{escape(at)}</td><td>{entries}</td></tr>"
    )
