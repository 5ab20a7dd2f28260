"""``adc scenario run FILE_OR_DIR...``: QA scenarios on a virtual clock against the simulated cabinet, or against a
running ``adc serve`` with ``--url``.

Every file is read and checked first (a schema error or an unknown id names file, line and field, and nothing of
that file runs); then each scenario runs on a fresh cabinet. The output names each failed step and expectation and
shows the ledger around it; ``--junit`` and ``--report`` write JUnit XML and an HTML page. Exit 0 when every
scenario passed, 1 otherwise. The scenario machinery is imported when the command runs, so other ``adc`` commands
do not pay for it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from controller.scenarios.results import ScenarioResult

scenario_app = typer.Typer(help="QA scenarios on a virtual clock (docs/scenarios.md).", no_args_is_help=True)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


@scenario_app.command("run")
def run(
    paths: Annotated[
        list[Path], typer.Argument(metavar="FILE_OR_DIR", help="Scenario files, or directories of *.yaml files.")
    ],
    *,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here.")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write an HTML report here.")] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="Run against a running 'adc serve' (http://127.0.0.1:8000).")
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option("--client-id", envvar="ADC_SCENARIO_CLIENT_ID", help="Integrator client for remote checks."),
    ] = None,
    client_secret: Annotated[
        str | None, typer.Option("--client-secret", envvar="ADC_SCENARIO_CLIENT_SECRET", help="Its secret.")
    ] = None,
    central_url: Annotated[
        str | None,
        typer.Option(
            "--central-url",
            envvar="ADC_CENTRAL_DATABASE_URL",
            help="Fleet scenarios: the PostgreSQL server for their central (a fresh schema each run, dropped after).",
        ),
    ] = None,
) -> None:
    """Run scenarios; exit 1 if any expectation failed or any file did not load."""
    from controller.scenarios.fleet_run import FleetTarget
    from controller.scenarios.html_report import html_report
    from controller.scenarios.junit import junit_xml
    from controller.scenarios.runner import find_scenarios, load_all, run_all
    from controller.scenarios.targets import RemoteTarget

    # Device faults are the point of some scenarios: the warnings the running loop and pymodbus log about them
    # are not news here (the results say what happened).
    logging.getLogger().addHandler(logging.NullHandler())
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise typer.BadParameter(f"no such file or directory: {', '.join(map(str, missing))}")
    files = find_scenarios(paths)
    if not files:
        raise typer.BadParameter(f"no *.yaml scenario files in {', '.join(map(str, paths))}")
    remote = RemoteTarget(url.rstrip("/"), client_id, client_secret) if url else None
    items = load_all(files, remote)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=len(items) < 2,
    ) as progress:
        task = progress.add_task("scenarios", total=len(items))

        def done(result: ScenarioResult) -> None:
            _print(result)
            progress.advance(task)

        results = run_all(items, remote, progress=done, fleet=FleetTarget(central_url))
    passed = sum(r.passed for r in results)
    seconds = sum(r.seconds for r in results)
    colour = "green" if passed == len(results) else "red"
    out.print(f"[{colour}]{passed} of {len(results)} scenarios passed[/] in {seconds:.1f} s")
    if junit is not None:
        junit.write_text(junit_xml(results), "utf-8")
        out.print(f"JUnit XML: {junit}")
    if report is not None:
        report.write_text(html_report(results), "utf-8")
        out.print(f"HTML report: {report}")
    if passed != len(results):
        raise typer.Exit(1)


def _print(result: ScenarioResult) -> None:
    from controller.scenarios.expectations import describe_entry
    from controller.scenarios.values import format_duration

    label = {"passed": "[green]PASS[/]", "failed": "[red]FAIL[/]", "error": "[red]ERROR[/]"}[result.status]
    timing = f"{len(result.steps)}/{result.total_steps} steps, {format_duration(result.virtual)} virtual, "
    out.print(f"{label} {escape(str(result.path))}: {escape(result.name)} [dim]({timing}{result.seconds:.1f} s)[/]")
    if result.passed:
        return
    for line in result.summary().splitlines():
        out.print(f"    {escape(line)}")
    failed = result.failed_step
    if failed is not None and result.context:
        written = {e["seq"] for e in failed.entries}
        out.print("    ledger around the step (> marks the step's own entries):")
        for entry in result.context:
            marker = ">" if entry["seq"] in written else " "
            out.print(f"    {marker} {escape(describe_entry(entry))}")
