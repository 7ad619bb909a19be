"""``runner check``: published numbers in ``expect:`` against reproduced results, as tables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runner.cli import main
from runner.results.expect import END_MARKER, START_MARKER, meets, update_block
from runner.spec.schema import ExpectedValue
from tests.conftest import ROOT, TINY_SPEC, subprocess_env

EXPECT = """\
expect:
  source: "A book, ch. 3, Table 3.1"
  metrics:
    test/accuracy: {value: 0.90, tolerance: 0.02}
    test/roc_auc: {min: 0.95}
"""


def write_published(directory: Path, name: str, metrics: dict[str, float] | None) -> Path:
    """A spec under ``<directory>/specs/published`` and, unless None, its results file."""
    spec = directory / "specs" / "published" / f"{name}.yaml"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(TINY_SPEC.replace("name: tiny", f"name: {name}") + EXPECT)
    if metrics is not None:
        out = directory / "results" / f"{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(metrics))
    return spec


@pytest.mark.parametrize(
    "expected,value,ok",
    [
        (ExpectedValue(value=0.9, tolerance=0.02), 0.92, True),
        (ExpectedValue(value=0.9, tolerance=0.02), 0.8799, False),
        (ExpectedValue(value=0.9221, tolerance=0.0), 0.9221, True),
        (ExpectedValue(min=0.95), 0.95, True),
        (ExpectedValue(min=0.95), 0.9499, False),
        (ExpectedValue(max=0.1), 0.2, False),
        (ExpectedValue(min=0.0, max=1.0), float("nan"), False),
    ],
)
def test_meets(expected: ExpectedValue, value: float, ok: bool) -> None:
    assert meets(expected, value) is ok


def test_check_passes_and_writes_the_markdown_table(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_published(workdir, "alpha", {"test/accuracy": 0.91, "test/roc_auc": 0.97})
    write_published(workdir, "beta", {"test/accuracy": 0.895, "test/roc_auc": 0.99})
    assert main(["check"]) == 0  # default: every spec under specs/published, results/<stem>.json
    out = capsys.readouterr().out
    assert "alpha" in out and "beta" in out and "pass" in out and "miss" not in out
    table = (workdir / "results" / "reproduction.md").read_text()
    assert "| `alpha` | `test/accuracy` | 0.9000 | 0.9100 | ± 0.02 | ✅ pass |" in table
    assert "| `beta` | `test/roc_auc` | — | 0.9900 | ≥ 0.95 | ✅ pass |" in table
    assert "- `alpha`, `beta`: A book, ch. 3, Table 3.1" in table  # a source cited twice is listed once


def test_a_miss_or_a_missing_result_exits_1_and_says_which_command_writes_it(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missed = write_published(workdir, "alpha", {"test/accuracy": 0.85, "test/roc_auc": 0.97})
    absent = write_published(workdir, "beta", None)
    markdown = workdir / "table.md"
    assert main(["check", str(missed), "--markdown", str(markdown)]) == 1
    assert "| `alpha` | `test/accuracy` | 0.9000 | 0.8500 | ± 0.02 | ❌ miss |" in markdown.read_text()
    capsys.readouterr()
    assert main(["check", str(absent), "--markdown", str(markdown)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert f"results/beta.json is missing: `runner run {absent} --metrics-out results/beta.json`" in out
    assert "⚠️ no result" in markdown.read_text()


def test_update_readme_rewrites_only_the_marked_block(workdir: Path) -> None:
    write_published(workdir, "alpha", {"test/accuracy": 0.9, "test/roc_auc": 0.96})
    readme = workdir / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{START_MARKER}\nstale table\n{END_MARKER}\nafter\n")
    assert main(["check", "--update-readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n") and text.endswith(f"{END_MARKER}\nafter\n")
    assert "stale table" not in text and "| `alpha` | `test/roc_auc` | — | 0.9600 |" in text
    assert main(["check", "--update-readme", str(readme)]) == 0
    assert readme.read_text() == text  # idempotent
    readme.write_text("no markers\n")
    assert main(["check", "--update-readme", str(readme)]) == 2


def test_a_source_cited_by_several_specs_is_listed_once_and_the_readme_gets_the_table_only(workdir: Path) -> None:
    for name in ("alpha", "beta"):
        write_published(workdir, name, {"test/accuracy": 0.9, "test/roc_auc": 0.96})
    readme = workdir / "README.md"
    readme.write_text(f"{START_MARKER}\n{END_MARKER}\n")
    markdown = workdir / "table.md"
    assert main(["check", "--markdown", str(markdown), "--update-readme", str(readme)]) == 0
    text = markdown.read_text()
    assert text.count("A book, ch. 3, Table 3.1") == 1 and "- `alpha`, `beta`: A book, ch. 3, Table 3.1" in text
    assert "| `beta` | `test/roc_auc` |" in readme.read_text() and "A book" not in readme.read_text()


def test_update_block_needs_both_markers() -> None:
    with pytest.raises(ValueError, match="reproduction-table"):
        update_block(f"{START_MARKER}\nno end\n", "x\n")


def test_check_imports_neither_torch_nor_mlflow(workdir: Path) -> None:
    write_published(workdir, "alpha", {"test/accuracy": 0.9, "test/roc_auc": 0.96})
    code = (
        "import sys; from runner.cli import main; rc = main(['check']);"
        "heavy = [m for m in ('torch', 'mlflow', 'dvc') if m in sys.modules];"
        "print('HEAVY', heavy); raise SystemExit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=workdir, env=subprocess_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout


def test_readme_has_the_generated_reproduction_table() -> None:
    text = (ROOT / "README.md").read_text()
    start, end = text.index(START_MARKER), text.index(END_MARKER)
    block = text[start:end]
    for spec in sorted(p for p in (ROOT / "specs" / "published").glob("*.yaml") if not p.name.endswith(".best.yaml")):
        assert f"`{spec.stem}`" in block, f"README's table lacks {spec.stem}: run dvc repro, then runner check --update-readme README.md"


def test_a_cross_validated_spec_expects_the_summary_its_run_writes(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cv = TINY_SPEC.replace("split: {test: 0.2, val: 0.2, stratify: true}", "split: {folds: 3}").replace(", dropout: 0.1", "")
    spec = workdir / "cv.yaml"
    spec.write_text(cv + "expect:\n  source: a test\n  metrics:\n    test/accuracy: {min: 0.5}\n")
    assert main(["validate", str(spec)]) == 2  # a cross-validated run's --metrics-out holds the summary
    assert "Did you mean 'test/accuracy_mean'?" in capsys.readouterr().err
    spec.write_text(cv + "expect:\n  source: a test\n  metrics:\n    test/accuracy_mean: {min: 0.5}\n    test/accuracy_std: {max: 0.5}\n")
    assert main(["run", str(spec), "--no-track", "--metrics-out", str(workdir / "results" / "cv.json")]) == 0
    assert main(["check", str(spec), "--results", str(workdir / "results")]) == 0
