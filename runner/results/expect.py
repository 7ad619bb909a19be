"""``runner check``: compare reproduced metrics with the numbers a spec's ``expect:`` block cites.

A spec ``specs/published/X.yaml`` is checked against ``results/X.json``, the file
``runner run specs/published/X.yaml --metrics-out results/X.json`` (the dvc.yaml stage ``X``)
writes. The verdicts become a terminal table, a Markdown table, and optionally the block
between two markers in the README, so that the README's table is generated, never typed.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from runner.spec.schema import ExpectedValue, Spec

PUBLISHED_DIR = Path("specs") / "published"
RESULTS_DIR = Path("results")
START_MARKER = "<!-- reproduction-table:start -->"
END_MARKER = "<!-- reproduction-table:end -->"
PASS, MISS, MISSING = "pass", "miss", "missing"


@dataclass(frozen=True)
class Row:
    """One expected metric of one spec, and what the reproduction gave."""

    spec: str
    metric: str
    published: str
    reproduced: float | None
    tolerance: str
    verdict: str


@dataclass
class SpecCheck:
    """Every expected metric of one spec."""

    spec_file: Path
    results_file: Path
    source: str
    missing: bool = False  # no results file
    rows: list[Row] = field(default_factory=list)


def results_file(spec_file: Path, results_dir: Path = RESULTS_DIR) -> Path:
    """Where the reproduced metrics of ``spec_file`` are: ``<results_dir>/<spec stem>.json``."""
    return results_dir / f"{spec_file.stem}.json"


def published_specs(directory: Path = PUBLISHED_DIR) -> list[Path]:
    """Every spec under ``directory``, in a stable order."""
    # A search's <spec>.best.yaml is its output, not a published spec.
    return sorted(path for path in directory.rglob("*.yaml") if not path.name.endswith(".best.yaml"))


def _number(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"


def describe(expected: ExpectedValue) -> tuple[str, str]:
    """(published, tolerance) as printed: the cited value, or a dash where only bounds exist."""
    published = _number(expected.value) if expected.value is not None else "—"
    parts = []
    if expected.tolerance is not None:
        parts.append(f"± {expected.tolerance:g}")
    if expected.min is not None and expected.max is not None:
        parts.append(f"{expected.min:g} to {expected.max:g}")
    elif expected.min is not None:
        parts.append(f"≥ {expected.min:g}")
    elif expected.max is not None:
        parts.append(f"≤ {expected.max:g}")
    for sign, comparisons in (("<", expected.below), (">", expected.above)):
        for c in comparisons:
            factor = "" if c.factor == 1 else f"{c.factor:g} × "
            parts.append(f"{sign} {factor}{c.spec}" + (f" {c.metric}" if c.metric else ""))
    return published, ", ".join(parts)


def compare(expected: ExpectedValue, metric: str, value: float, results_dir: Path) -> str:
    """The verdict of ``below``/``above``: ``value`` against ``factor`` times other specs'
    results (``<results_dir>/<spec>.json``); missing when one of those is not there."""
    verdict = PASS
    for sign, comparisons in ((-1, expected.below), (1, expected.above)):
        for c in comparisons:
            other_file = results_dir / f"{c.spec}.json"
            other = json.loads(other_file.read_text()).get(c.metric or metric) if other_file.exists() else None
            if other is None:
                verdict = MISSING if verdict == PASS else verdict
            elif not sign * (value - c.factor * float(other)) > 0:
                verdict = MISS
    return verdict


def meets(expected: ExpectedValue, value: float) -> bool:
    """Whether ``value`` lies within the tolerance of the cited value and within the bounds."""
    if math.isnan(value):
        return False
    if expected.value is not None and expected.tolerance is not None:
        # A hair of slack so that a tolerance written in decimal is not missed by float rounding.
        if abs(value - expected.value) > expected.tolerance * (1 + 1e-12) + 1e-15:
            return False
    if expected.min is not None and value < expected.min:
        return False
    if expected.max is not None and value > expected.max:
        return False
    return True


def check_spec(spec_file: Path, spec: Spec, results_dir: Path = RESULTS_DIR) -> SpecCheck | None:
    """The verdicts for one spec, or None when it has no ``expect:`` block."""
    if spec.expect is None:
        return None
    out = results_file(spec_file, results_dir)
    metrics: dict[str, float] | None = None
    if out.exists():
        metrics = json.loads(out.read_text())
    checked = SpecCheck(spec_file, out, spec.expect.source, missing=metrics is None)
    for name, expected in spec.expect.metrics.items():
        published, tolerance = describe(expected)
        value = None if metrics is None else metrics.get(name)
        if metrics is None:
            verdict = MISSING
        else:  # a metric absent from the results is a miss, not a missing file
            verdict = PASS if value is not None and meets(expected, float(value)) else MISS
            if verdict == PASS and (expected.below or expected.above):
                verdict = compare(expected, name, float(value), results_dir)  # type: ignore[arg-type]
        checked.rows.append(Row(spec_file.stem, name, published, value, tolerance, verdict))
    return checked


def rows(checks: Sequence[SpecCheck]) -> list[Row]:
    return [row for check in checks for row in check.rows]


def passed(checks: Sequence[SpecCheck]) -> bool:
    return all(row.verdict == PASS for row in rows(checks))


def markdown(checks: Sequence[SpecCheck], *, sources: bool = True) -> str:
    """The verdicts as a Markdown table, then (``sources``) each source once, with the specs
    that cite it."""
    marks = {PASS: "✅ pass", MISS: "❌ miss", MISSING: "⚠️ no result"}
    lines = [
        "| spec | metric | published | reproduced | tolerance | verdict |",
        "|---|---|---:|---:|---|---|",
    ]
    for row in rows(checks):
        reproduced = "—" if row.reproduced is None else _number(row.reproduced)
        lines.append(f"| `{row.spec}` | `{row.metric}` | {row.published} | {reproduced} | {row.tolerance} | {marks[row.verdict]} |")
    if sources:
        citing: dict[str, list[str]] = {}
        for check in checks:
            citing.setdefault(check.source, []).append(f"`{check.spec_file.stem}`")
        lines += ["", "Sources:", ""]
        lines += [f"- {', '.join(specs)}: {source}" for source, specs in citing.items()]
    return "\n".join(lines) + "\n"


def update_block(text: str, block: str) -> str:
    """``text`` with the lines between the reproduction-table markers replaced by ``block``."""
    pattern = re.compile(re.escape(START_MARKER) + r".*?" + re.escape(END_MARKER), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"no `{START_MARKER}` ... `{END_MARKER}` block to rewrite")
    return pattern.sub(lambda _: f"{START_MARKER}\n{block}{END_MARKER}", text, count=1)


def how_to_produce(check: SpecCheck) -> str:
    """The commands that write a missing results file."""
    return (
        f"{check.results_file} is missing: `runner run {check.spec_file} --metrics-out {check.results_file}` "
        f"writes it (in this repository's pipeline: `dvc repro {check.spec_file.stem}`)"
    )


def print_table(checks: Sequence[SpecCheck]) -> None:
    """The verdicts as a rich table, then what to do about missing results."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="reproduction of published results")
    for column in ("spec", "metric", "published", "reproduced", "tolerance", "verdict"):
        # fold, not ellipsis: a check whose names are cut off cannot be read in a CI log
        table.add_column(column, justify="right" if column in ("published", "reproduced") else "left", overflow="fold")
    styles = {PASS: "green", MISS: "bold red", MISSING: "yellow"}
    for row in rows(checks):
        reproduced = "—" if row.reproduced is None else _number(row.reproduced)
        verdict = "no result" if row.verdict == MISSING else row.verdict
        table.add_row(row.spec, row.metric, row.published, reproduced, row.tolerance, f"[{styles[row.verdict]}]{verdict}")
    console = Console()
    console.print(table)
    for check in checks:
        if check.missing:
            console.print(f"[yellow]{how_to_produce(check)}", soft_wrap=True)


def command(files: Sequence[Path], results_dir: Path, markdown_file: Path, readme: Path | None) -> int:
    """``runner check``: 0 when every expectation is met, 1 on a miss or missing result, 2 on
    an invalid spec or a README without markers."""
    from runner.spec import SpecError, load_spec

    files = list(files) or published_specs()
    if not files:
        print(f"runner: error: no specs to check: none given and none under {PUBLISHED_DIR}/", file=sys.stderr)
        return 2
    checks = []
    for file in files:
        try:
            spec = load_spec(file)
        except SpecError as error:
            print(f"{file}: invalid\n{error.render()}", file=sys.stderr)
            return 2
        checked = check_spec(file, spec, results_dir)
        if checked is None:
            print(f"{file}: no expect: block, nothing to check")
        else:
            checks.append(checked)
    if not checks:
        return 0
    print_table(checks)
    table = markdown(checks)
    markdown_file.parent.mkdir(parents=True, exist_ok=True)
    markdown_file.write_text(table)
    if readme is not None:
        try:
            # The README carries the verdicts; the sources are in the Markdown file (and docs/).
            readme.write_text(update_block(readme.read_text(), markdown(checks, sources=False)))
        except (OSError, ValueError) as error:
            print(f"runner: error: {readme}: {error}", file=sys.stderr)
            return 2
    return 0 if passed(checks) else 1
