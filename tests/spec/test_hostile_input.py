"""Each class of bad spec file and override the fuzzing found, answered with exit 2 and one line
per problem, at the file and line: bytes that are not text, characters and tags YAML or a spec
does not take, aliases that refer to themselves or expand without end, paths that cannot be
files, values too long to echo, ``--set`` values that are not plain YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.cli import main
from runner.spec.yaml_source import MAX_DEPTH, MAX_VALUES
from tests.conftest import TINY_SPEC


def _validate(tmp_path: Path, text: bytes | str, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert main(["validate", str(spec), *args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "runner: error" not in err, err
    return err


def _alias_bomb(levels: int) -> str:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, levels):
        previous, current = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{current}: &{current} [" + ",".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "text,answer",
    [
        (b"name: x\xff\xfe\n", "spec.yaml:1:8: not UTF-8 text (byte 0xff)"),
        (b"name: a\x00b\n", "spec.yaml:1:8: character U+0000 is not allowed in YAML"),
        (b"name: a\x07b\n", "spec.yaml:1:8: character U+0007 is not allowed in YAML"),
        (b"name: !!python/name:os.system x\n", "spec.yaml:1:7: name: unknown tag !!python/name:os.system: a spec holds plain values"),
        (b"seed: !!int abc\n", "spec.yaml:1:7: seed: 'abc' cannot be read as !!int"),
        (b"seed: !!int\n", "spec.yaml:1:7: seed: '' cannot be read as !!int"),
        (b"name: &a [*a]\n", "spec.yaml:1:7: an alias refers to the collection it is in"),
        (("x: " + "[" * 5000 + "]" * 5000 + "\n").encode(), f"nested too deeply (more than {MAX_DEPTH} levels)"),
        (("x: " + "[" * 100 + "]" * 100 + "\n").encode(), f"nested too deeply (more than {MAX_DEPTH} levels)"),
        (_alias_bomb(9).encode(), f"the spec expands to more than {MAX_VALUES} values (aliases of aliases?)"),
    ],
    ids=["not-utf8", "nul", "control", "python-tag", "bad-int", "empty-int", "self-alias", "deep-flow", "deep", "alias-bomb"],
)
def test_a_file_yaml_or_a_spec_cannot_take_is_one_problem_at_its_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: bytes, answer: str
) -> None:
    err = _validate(tmp_path, text, capsys)
    assert answer in err
    assert "(got None)" not in err  # an unreadable value is reported once, not again by the schema


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_an_empty_spec_names_its_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    err = _validate(tmp_path, text, capsys)
    assert f"{tmp_path / 'spec.yaml'}: name: is required but missing" in err and "<spec>" not in err


@pytest.mark.parametrize(
    "target,answer",
    [
        ("a" * 5000, "File name too long"),
        ("a\x00b", "embedded null byte"),
        ("", "must be a path to another spec"),
        ("missing.yaml", "no such file"),
    ],
    ids=["too-long", "nul", "empty", "missing"],
)
def test_an_extends_that_cannot_be_a_file_is_a_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str, answer: str
) -> None:
    import yaml

    err = _validate(tmp_path, yaml.safe_dump({"extends": target, "name": "x"}), capsys)
    assert "extends: " in err and answer in err
    assert max(len(line) for line in err.splitlines()) < 400  # a 5,000-character path is cut


def test_a_value_of_200000_characters_is_not_echoed_in_full(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = TINY_SPEC.replace("seed: 3", "seed: " + "7" * 10 + "x" * 200_000)
    err = _validate(tmp_path, text, capsys)
    assert "seed: " in err and "(200012 characters)" in err and len(err) < 2000  # its repr: 200,010 and two quotes


@pytest.mark.parametrize(
    "assignment,answer",
    [
        ("model.hidden=[256,128", "model.hidden: the value is not plain YAML: invalid YAML"),
        ("model=&a [*a]", "model: the value is not plain YAML: an alias and an anchor in a --set value"),
        ("train.epochs=*x", "train.epochs: the value is not plain YAML: an alias in a --set value"),
        ("name=!!python/name:os.system x", "name: the value is not plain YAML: a tag in a --set value"),
        ("model.hidden.0.x.y=1", "model.hidden.0.x.y: cannot set: model.hidden[0] is 8, not a mapping or a list"),
        ("model.hidden.5=1", "model.hidden.5: cannot set: model.hidden is a list of 1: 5 is not one of its items"),
        ("a..b=1", "a..b: cannot set: empty key in path 'a..b'"),
    ],
)
def test_a_set_value_or_path_that_cannot_be_used_is_a_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], assignment: str, answer: str
) -> None:
    err = _validate(tmp_path, TINY_SPEC, capsys, "--set", assignment)
    assert f"--set {assignment}: {answer}" in err


def test_an_unexpected_error_is_one_line_and_debug_shows_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import runner.cli as cli

    def broken(args: object) -> int:
        raise KeyError("a fault of specrun")

    spec = tmp_path / "spec.yaml"
    spec.write_text(TINY_SPEC)
    monkeypatch.setattr(cli, "cmd_validate", broken)
    assert main(["validate", str(spec)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "runner: error: KeyError: 'a fault of specrun'" and "--debug" in err and "Traceback" not in err
    with pytest.raises(KeyError, match="a fault of specrun"):
        main(["validate", str(spec), "--debug"])
    monkeypatch.setenv("SPECRUN_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["validate", str(spec)])


@pytest.mark.parametrize("name", ["../../../tmp/x", "/tmp/x", "a/b", ".hidden", ""])
def test_a_metric_name_that_would_be_a_path_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    text = TINY_SPEC.replace("metrics: [accuracy, roc_auc]", f"metrics: [accuracy, {{type: confusion_matrix, name: {name!r}}}]")
    err = _validate(tmp_path, text, capsys)
    assert "metrics[1].name" in err and "cannot name a metric" in err


def test_a_spec_cannot_write_specruns_or_mlflows_own_tags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = TINY_SPEC + "tracking: {tags: {team: vision, specrun.data_sha256: forged, mlflow.user: someone}}\n"
    err = _validate(tmp_path, text, capsys)
    assert "tracking.tags: mlflow.user, specrun.data_sha256: specrun.* and mlflow.* tags are specrun's and MLflow's own" in err
