"""`subguard test PATH...`: run the policy tests beside the rules, report pass/fail per
test, which decision rules no test made fire, and JUnit XML for CI."""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import click

from subguard.cli._options import data_option
from subguard.engine.sources import load_data
from subguard.errors import ConfigError, PolicyError, PolicyErrors, SubguardError
from subguard.testing.runner import TestReport, TestResult, run_tests

__all__ = ["register"]

_STATUS_STYLE = {
    "pass": ("PASS", "green"),
    "fail": ("FAIL", "red"),
    "error": ("ERROR", "red"),
    "skip": ("SKIP", "yellow"),
}


def _fail(message: str) -> None:
    click.echo(click.style("error: ", fg="red") + message, err=True)
    sys.exit(2)


def _print_policy_errors(exc: PolicyError) -> None:
    errors = exc.errors if isinstance(exc, PolicyErrors) else [exc]
    for error in errors:
        hint = f" ({error.hint})" if error.hint else ""
        click.echo(
            f"{error.path}:{error.line}:{error.col}: {error.code}: {error.message}{hint}", err=True
        )


def _details(result: TestResult) -> list[str]:
    lines = [f"    {result.message}"]
    effects = [d.effect for d in result.decisions]
    if result.expected and len(result.decisions) == 1:
        lines.append(f"    expected: {' or '.join(result.expected)}")
        lines.append(f"    actual:   {effects[0]}")
    elif result.expected:
        lines.append(f"    expected: {' / '.join(result.expected)}")
    for decision in result.decisions:
        lines.append(f"    decision for `{decision.request}`: {decision.effect}")
        for rule, message, location in decision.reasons:
            lines.append(f"      {rule}: {message}" + (f"  ({location})" if location else ""))
        if decision.masks:
            lines.append(f"      masks: {json.dumps(decision.masks)}")
        for error in decision.errors:
            lines.append(f"      error: {error}")
    return lines


def _text(report: TestReport, verbose: bool) -> None:
    for result in report.results:
        label, colour = _STATUS_STYLE[result.status]
        if result.status == "pass" and not verbose:
            click.echo(f"{click.style(label, fg=colour)}  {result.name}")
            continue
        click.echo(
            f"{click.style(label, fg=colour, bold=result.status != 'skip')}  {result.name}  ({result.location})"
        )
        if result.status in ("fail", "error"):
            for line in _details(result):
                click.echo(line)
    parts = [
        click.style(f"{report.count('pass')} passed", fg="green"),
        click.style(f"{report.count('fail')} failed", fg="red" if report.count("fail") else None),
    ]
    if report.count("error"):
        errors = report.count("error")
        parts.append(click.style(f"{errors} error{'s' * (errors != 1)}", fg="red"))
    if report.count("skip"):
        parts.append(click.style(f"{report.count('skip')} skipped", fg="yellow"))
    click.echo(", ".join(parts) + f" in {report.duration_s:.2f}s")
    coverage = report.coverage
    if coverage is not None:
        click.echo(
            f"coverage: {coverage.percent:.1f}% ({len(coverage.covered)}/{coverage.total} decision rules fired)"
        )
        for location, rule in coverage.missed:
            click.echo(f"  {click.style(location, bold=True)}: {rule} never fired")


def _junit(report: TestReport, path: Path) -> None:
    suites = ET.Element("testsuites", name="subguard test")
    by_package: dict[str, list[TestResult]] = {}
    for result in report.results:
        by_package.setdefault(result.package, []).append(result)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for package, results in by_package.items():
        counts = {
            "tests": len(results),
            "failures": sum(r.status == "fail" for r in results),
            "errors": sum(r.status == "error" for r in results),
            "skipped": sum(r.status == "skip" for r in results),
        }
        for key, value in counts.items():
            totals[key] += value
        suite = ET.SubElement(suites, "testsuite", name=package)
        for key, value in counts.items():
            suite.set(key, str(value))
        suite.set("time", f"{sum(r.duration_s for r in results):.6f}")
        for result in results:
            file, _, line = result.location.rpartition(":")
            case = ET.SubElement(
                suite,
                "testcase",
                classname=package,
                name=result.rule,
                file=file,
                line=line,
                time=f"{result.duration_s:.6f}",
            )
            if result.status == "skip":
                ET.SubElement(case, "skipped", message=result.message)
            elif result.status in ("fail", "error"):
                tag = "failure" if result.status == "fail" else "error"
                element = ET.SubElement(case, tag, message=result.message)
                element.text = "\n".join(line.strip() for line in _details(result))
    for key, value in totals.items():
        suites.set(key, str(value))
    suites.set("time", f"{report.duration_s:.6f}")
    ET.indent(suites)
    path.write_bytes(ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n")


@click.command("test")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--run",
    "run",
    default=None,
    metavar="REGEX",
    help="Run only tests whose `package.rule` matches.",
)
@click.option("--coverage", is_flag=True, help="Report decision rules no test made fire.")
@click.option(
    "--fail-under",
    type=click.FloatRange(0, 100),
    default=None,
    metavar="PCT",
    help="Fail when coverage is below PCT percent (implies --coverage).",
)
@click.option(
    "--junit",
    "junit",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Also write the results as JUnit XML.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@data_option(path=click.Path(exists=True, dir_okay=False))
@click.option("-v", "--verbose", is_flag=True, help="Show the location of every test.")
def test_command(
    paths: tuple[str, ...],
    run: str | None,
    coverage: bool,
    fail_under: float | None,
    junit: str | None,
    fmt: str,
    data_files: tuple[str, ...],
    verbose: bool,
) -> None:
    """Run the `test_…` rules in PATHS (`todo_test_…` are skipped); exit 1 if any fails."""
    if run is not None:
        try:
            re.compile(run)
        except re.error as exc:
            _fail(f"`--run`: not a regular expression: {exc}")
    try:
        data = load_data(data_files) if data_files else None
    except ConfigError as exc:
        _fail(str(exc))
    try:
        report = run_tests(
            list(paths), run=run, data=data, coverage=coverage or fail_under is not None
        )
    except PolicyError as exc:
        _print_policy_errors(exc)
        sys.exit(2)
    except SubguardError as exc:
        _fail(str(exc))
    if junit is not None:
        try:
            _junit(report, Path(junit))
        except OSError as exc:
            _fail(f"`{junit}`: cannot write the JUnit file: {exc.strerror or exc}")
    if fmt == "json":
        click.echo(json.dumps(report.as_dict(), indent=2, sort_keys=False))
    else:
        _text(report, verbose)
    if not report.results:
        click.echo(click.style("no tests found", fg="red"), err=True)
        sys.exit(1)
    failed = not report.ok
    if (
        fail_under is not None
        and report.coverage is not None
        and report.coverage.percent < fail_under
    ):
        click.echo(
            click.style(
                f"coverage {report.coverage.percent:.1f}% is under {fail_under:g}%", fg="red"
            ),
            err=True,
        )
        failed = True
    sys.exit(1 if failed else 0)


def register(group: click.Group) -> None:
    """Add `subguard test` to the `subguard` command."""
    group.add_command(test_command)
