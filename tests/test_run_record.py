"""The run record has one home (``runner/tracking/record.py``), and the package no import cycle."""

from __future__ import annotations

import ast
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from runner.cli import main
from runner.tracking import record
from tests.conftest import TINY_SPEC
from tests.test_cv import cv_spec, runs_of

PACKAGE = Path(__file__).resolve().parents[1] / "runner"
#: Strings that look like tags but are not MLflow's: markers inside a packed checkpoint, and
#: the Optuna user attribute of a trial that failed by an error.
NOT_TAGS = {("training/packing.py", "specrun.packed"), ("training/packing.py", "specrun.tensor"), ("search/worker.py", "specrun.error")}


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_every_tag_name_is_spelled_in_the_record_module_only() -> None:
    named = {value for name, value in vars(record).items() if name.isupper() and isinstance(value, str)}
    elsewhere = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "record.py":
            continue
        where = path.relative_to(PACKAGE).as_posix()
        for line, text in _string_constants(path):
            # A tag, or an artifact's file name (metric keys and the folder names ``model`` or
            # ``checkpoints`` are also plain words of the spec, so they are not looked for).
            recorded = re.fullmatch(r"specrun\.[\w.]+", text) is not None or (text in named and "." in text)
            if recorded and (where, text) not in NOT_TAGS:
                elsewhere.append(f"{where}:{line}: {text}")
    assert elsewhere == []


def _imports(path: Path, module: str) -> set[str]:
    """The runner modules ``module`` imports, at the top or inside functions, not under TYPE_CHECKING."""
    tree = ast.parse(path.read_text())
    type_only = {
        id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)
    }
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("runner")}


def test_no_module_of_the_package_imports_itself_round_a_cycle() -> None:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {name: _imports(path, name) & modules.keys() - {name} for name, path in modules.items()}
    # A package's __init__ is imported on the way to its modules; an edge to it is not a dependency.
    graph = {name: {t for t in targets if modules[t].name != "__init__.py"} for name, targets in graph.items()}
    cycles = []

    def visit(name: str, trail: list[str]) -> None:
        for target in graph[name]:
            if target in trail:
                cycles.append(" -> ".join(trail[trail.index(target) :] + [target]))
            elif target not in done:
                visit(target, [*trail, target])
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        visit(name, [name])
    assert cycles == []


def test_the_cycle_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    module = tmp_path / "runner" / "a.py"
    module.parent.mkdir()
    module.write_text("def f():\n    from runner.b import g\n")
    assert _imports(module, "runner.a") == {"runner.b", "runner.b.g"}


@pytest.mark.slow
def test_a_parent_run_and_its_members_carry_the_same_provenance(
    workdir: Path, write_spec: Callable[..., Path], migrated_tracking_uri: str
) -> None:
    subprocess.run(["git", "init", "-q"], cwd=workdir, check=True)
    subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "x"], cwd=workdir, check=True
    )
    spec = cv_spec(write_spec, folds="{type: kfold, k: 2}")
    assert main(["run", str(spec), "--tracking-uri", migrated_tracking_uri, "--set", "train.epochs=1"]) == 0
    runs = runs_of(migrated_tracking_uri)
    (parent,) = [r for r in runs if record.PARENT_RUN_ID not in r.data.tags]
    children = [r for r in runs if r.data.tags.get(record.PARENT_RUN_ID) == parent.info.run_id]
    origin = [
        record.SPEC_NAME,
        record.SPEC_SHA256,
        record.DATA_SHA256,
        record.SPEC_FILE,
        record.GIT_COMMIT,
        record.GIT_DIRTY,
        *record.VERSION_TAGS,
    ]
    assert len(children) == 2
    for run in [parent, *children]:
        assert set(origin) <= run.data.tags.keys(), set(origin) - run.data.tags.keys()
        assert {k: run.data.tags[k] for k in origin if k != record.SPEC_SHA256} == {
            k: parent.data.tags[k] for k in origin if k != record.SPEC_SHA256
        }
    assert record.is_parent(parent.data.tags) and all(record.is_member(c.data.tags) for c in children)
    assert MlflowClient(migrated_tracking_uri).get_run(parent.info.run_id).data.tags[record.GIT_DIRTY] == "false"


def test_a_password_in_a_uri_is_never_recorded(
    workdir: Path, write_spec: Callable[..., Path], migrated_tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(TINY_SPEC + "tracking: {uri: 'http://alice:s3cret@mlflow.example.invalid:5000'}\n")
    # --tracking-uri beats the spec's, so the run is recorded here, and what it records is read.
    assert main(["run", str(spec), "--tracking-uri", migrated_tracking_uri, "--set", "train.epochs=1"]) == 0
    (run,) = runs_of(migrated_tracking_uri)
    client = MlflowClient(migrated_tracking_uri)
    resolved = Path(client.download_artifacts(run.info.run_id, record.SPEC_ARTIFACT, str(workdir))).read_text()
    assert run.data.params["tracking.uri"] == "http://alice:***@mlflow.example.invalid:5000"
    assert "s3cret" not in resolved and "s3cret" not in str(run.data.params) and "s3cret" not in str(run.data.tags)
    assert "s3cret" not in capsys.readouterr().err
    assert main(["run", str(spec)]) == 2  # the spec's own, unreachable: said without the password
    err = capsys.readouterr().err
    assert "http://alice:***@mlflow.example.invalid:5000 cannot be reached" in err and "s3cret" not in err
