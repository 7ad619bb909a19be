"""Loading and validating specs: every problem reported at once, located, with suggestions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from runner.spec import SpecError, load_spec, with_overrides
from tests.conftest import TINY_SPEC


def problems(path: Path, sets: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec(path, sets)
    return [str(p) for p in caught.value.problems]


def test_valid_spec_fills_defaults(write_spec: Callable[..., Path]) -> None:
    spec = load_spec(write_spec())
    assert spec.optimizer.type == "adam" and spec.optimizer.lr == 0.01
    assert spec.optimizer.betas == (0.9, 0.999)
    assert spec.model.init.weights.type == "kaiming_normal"
    assert spec.train.shuffle is True
    assert spec.tracking.experiment is None


def test_unknown_key_negative_lr_and_misspelt_type_reported_together(write_spec: Callable[..., Path]) -> None:
    path = write_spec(
        """\
        name: bad
        data:
          dataset: breast_cancer
        model:
          type: mlp
          hiden: [32]
        loss: bce
        optimizer:
          type: adma
          lr: -1
        """
    )
    found = problems(path)
    assert len(found) == 3, found
    assert f"{path}:6:3: model.hiden: unknown key 'hiden'. Did you mean 'hidden'?" in found
    assert any(p.startswith(f"{path}:9:9: optimizer.type: unknown optimizer 'adma'. Did you mean 'adam'?") for p in found)
    assert any(p.startswith(f"{path}:10:7: optimizer.lr:") and "greater than 0" in p for p in found)


def test_misspelt_dataset_and_metric_names_get_suggestions(write_spec: Callable[..., Path]) -> None:
    path = write_spec(TINY_SPEC.replace("dataset: breast_cancer", "dataset: breast_cancr").replace("roc_auc]", "roc_acu]"))
    found = problems(path)
    assert any("unknown dataset 'breast_cancr'. Did you mean 'breast_cancer'?" in p for p in found)
    assert any("metrics[1]: unknown metric 'roc_acu'. Did you mean 'roc_auc'?" in p for p in found)


def test_longer_library_names_suggest_the_name_they_begin_with(write_spec: Callable[..., Path]) -> None:
    # scikit-learn says f1_score and accuracy_score; difflib finds neither close to f1/accuracy.
    path = write_spec(TINY_SPEC.replace("metrics: [accuracy, roc_auc]", "metrics: [accuracy_score, f1_score]"))
    found = problems(path)
    assert any("metrics[0]: unknown metric 'accuracy_score'. Did you mean 'accuracy'?" in p for p in found), found
    assert any("metrics[1]: unknown metric 'f1_score'. Did you mean 'f1'?" in p for p in found), found


def test_duplicate_keys_are_rejected(write_spec: Callable[..., Path]) -> None:
    path = write_spec(TINY_SPEC + "seed: 4\n")
    found = problems(path)
    assert found == [f"{path}:13:1: seed: duplicate key (first written at line 2)"]


def test_yaml_syntax_error_is_located(write_spec: Callable[..., Path]) -> None:
    path = write_spec("name: x\nmodel: [unclosed\n")
    found = problems(path)
    assert len(found) == 1 and found[0].startswith(f"{path}:") and "invalid YAML" in found[0]


def test_missing_required_fields(write_spec: Callable[..., Path]) -> None:
    found = problems(write_spec("name: x\n"))
    for field in ("data", "model", "loss", "optimizer"):
        assert any(f": {field}: is required but missing" in p for p in found), found


def test_cross_field_checks(write_spec: Callable[..., Path]) -> None:
    text = TINY_SPEC.replace("loss: bce", "loss: mse").replace("stratify: true", "stratify: false")
    found = problems(write_spec(text))
    assert any("loss 'mse' is for regression targets" in p for p in found)
    assert any("metric 'accuracy' is for classification" in p for p in found)


def test_early_stopping_must_monitor_a_logged_metric(write_spec: Callable[..., Path]) -> None:
    text = TINY_SPEC.replace("train: {epochs: 3, batch_size: 64}", "train: {epochs: 3, early_stopping: {monitor: val/f1}}")
    found = problems(write_spec(text))
    assert len(found) == 1 and "'val/f1' is not logged per epoch" in found[0]


def test_split_fractions_must_leave_training_data(write_spec: Callable[..., Path]) -> None:
    found = problems(write_spec(TINY_SPEC.replace("test: 0.2, val: 0.2", "test: 0.6, val: 0.5")))
    assert len(found) == 1 and "data.split" in found[0] and "must leave training data" in found[0]


def test_set_overrides_parse_yaml_values(write_spec: Callable[..., Path]) -> None:
    spec = load_spec(write_spec(), ["optimizer.lr=0.5", "model.hidden=[4, 2]", "train.epochs=7"])
    assert spec.optimizer.lr == 0.5 and spec.model.hidden == [4, 2] and spec.train.epochs == 7


def test_bad_set_override_is_reported_against_the_argument(write_spec: Callable[..., Path]) -> None:
    found = problems(write_spec(), ("optimizer.lr=-3",))
    assert found == ["--set optimizer.lr=-3: optimizer.lr: Input should be greater than 0 (got -3)"]


def test_a_key_misspelt_in_a_set_override_is_reported_against_the_argument(write_spec: Callable[..., Path]) -> None:
    found = problems(write_spec(), ("optimzer.lr=0.1", "train.early_stopping.patence=3"))
    assert found == [
        "--set optimzer.lr=0.1: optimzer: unknown key 'optimzer'. Did you mean 'optimizer'?",
        "--set train.early_stopping.patence=3: train.early_stopping.patence: unknown key 'patence'. Did you mean 'patience'?",
    ]


def test_extends_merges_over_the_base(write_spec: Callable[..., Path]) -> None:
    write_spec(name="base.yaml")
    child = write_spec("extends: base.yaml\nname: child\noptimizer: {lr: 0.2}\ntrain: {epochs: 9}\n", name="child.yaml")
    spec = load_spec(child)
    assert spec.name == "child"
    assert spec.optimizer.type == "adam" and spec.optimizer.lr == 0.2
    assert spec.train.epochs == 9 and spec.train.batch_size == 64


def test_errors_in_a_base_point_at_the_base_file(write_spec: Callable[..., Path]) -> None:
    base = write_spec(TINY_SPEC.replace("lr: 0.01", "lr: -0.01"), name="base.yaml")
    child = write_spec("extends: base.yaml\nname: child\n", name="child.yaml")
    found = problems(child)
    assert len(found) == 1 and found[0].startswith(f"{base}:10:")


def test_circular_extends_is_an_error(write_spec: Callable[..., Path]) -> None:
    write_spec("extends: b.yaml\nname: a\n", name="a.yaml")
    b = write_spec("extends: a.yaml\nname: b\n", name="b.yaml")
    found = problems(b)
    assert len(found) == 1 and "circular" in found[0]  # not also every key the chain would give


def test_a_missing_base_or_file_is_the_one_problem_reported(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    child = write_spec("extends: nope.yaml\nname: child\n", name="child.yaml")
    assert problems(child, ("seed=3",)) == [f"{child}:1:10: extends: cannot read nope.yaml: no such file ({tmp_path / 'nope.yaml'})"]
    assert problems(tmp_path / "absent.yaml") == [f"{tmp_path / 'absent.yaml'}: cannot read: No such file or directory"]


def test_float_without_dot_is_a_float(write_spec: Callable[..., Path]) -> None:
    spec = load_spec(write_spec(TINY_SPEC.replace("strength: 1.0e-4", "strength: 1e-4")))
    assert spec.regularizer.strength == pytest.approx(1e-4)


def test_shorthands(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    text = TINY_SPEC.replace("dataset: breast_cancer", "dataset: {path: data.csv, target: y}").replace(
        "regularizer: {type: l2, strength: 1.0e-4}", "regularizer: {l2: 1.0e-4}"
    )
    spec = load_spec(write_spec(text))
    assert spec.data.dataset.type == "file" and spec.data.dataset.target == "y"
    assert spec.regularizer.type == "elastic_net" and spec.regularizer.l2 == 1e-4


def test_with_overrides_revalidates(write_spec: Callable[..., Path]) -> None:
    spec = load_spec(write_spec())
    assert with_overrides(spec, {"optimizer.lr": 0.3}).optimizer.lr == 0.3
    with pytest.raises(SpecError):
        with_overrides(spec, {"optimizer.lr": -1.0})


def test_reproducibility_off_is_off_although_yaml_reads_false(write_spec: Callable[..., Path]) -> None:
    spec = write_spec(TINY_SPEC + "reproducibility: off\n")
    assert load_spec(spec).reproducibility == "off"
    assert load_spec(write_spec(), ["reproducibility=off"]).reproducibility == "off"
    with pytest.raises(SpecError, match="reproducibility"):
        load_spec(spec, ["reproducibility=on"])  # true is no level
