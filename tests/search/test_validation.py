"""Invalid search spaces are rejected at validation, with file:line errors, before any trial."""

from __future__ import annotations

import pytest

from runner.spec import SpecError, load_spec
from tests.conftest import TINY_SPEC


def problems(write_spec, search: str) -> list[str]:  # type: ignore[no-untyped-def]
    file = write_spec(TINY_SPEC + search)
    with pytest.raises(SpecError) as caught:
        load_spec(file)
    return [str(p).replace(f"{file.parent}/", "") for p in caught.value.problems]


def test_range_and_choice_rules_name_the_line(write_spec) -> None:  # type: ignore[no-untyped-def]
    found = problems(
        write_spec,
        """\
search:
  space:
    optimizer.lr: {type: float, low: 1.0, high: 0.1}
    regularizer.strength: {type: float, low: 0.0, high: 0.1, log: true}
    model.hidden: {type: categorical, choices: []}
""",
    )
    assert any(p.startswith("spec.yaml:15:") and "`low <= high` must hold" in p for p in found), found
    assert any(p.startswith("spec.yaml:16:") and "`low > 0` must hold for a log scale" in p for p in found), found
    assert any(p.startswith("spec.yaml:17:") and "at least 1 item" in p for p in found), found


def test_paths_are_checked_against_the_schema_for_the_sampled_type(write_spec) -> None:  # type: ignore[no-untyped-def]
    found = problems(
        write_spec,
        """\
search:
  space:
    optimizer.lrr: {type: float, low: 0.001, high: 0.1}
    model.dropout: {type: categorical, choices: [0.1, "a lot"]}
    train.epochs: {type: float, low: 1, high: 5}
    optimizer.momentum: {type: float, low: 0.0, high: 0.9}
    optimizer.dampening: {type: float, low: 0.0, high: 0.5, when: {optimizer.typ: sgd}}
""",
    )
    assert "spec.yaml:15:5: search.space.optimizer.lrr: names no field of the spec" in found, found
    assert any(p.startswith("spec.yaml:16:5") and "rejects the sampled value 'a lot'" in p for p in found), found
    assert any(p.startswith("spec.yaml:17:5") and "fractional part" in p for p in found), found
    # adam has no momentum: only sgd does, so a momentum search needs `when: {optimizer.type: sgd}`.
    assert any(p.startswith("spec.yaml:18:5") and "names no field" in p for p in found), found
    assert any(p.startswith("spec.yaml:19:") and "when.optimizer.typ: the condition names no field" in p for p in found), found


def test_a_conditional_path_valid_under_its_condition_passes(write_spec) -> None:  # type: ignore[no-untyped-def]
    spec = load_spec(
        write_spec(
            TINY_SPEC
            + """\
search:
  metric: val/accuracy
  direction: maximize
  space:
    optimizer.type: {type: categorical, choices: [adam, sgd]}
    optimizer.momentum: {type: float, low: 0.0, high: 0.9, when: {optimizer.type: sgd}}
    model.hidden: {type: categorical, choices: [[4], [8, 4]]}
"""
        )
    )
    assert spec.search is not None and list(spec.search.space) == ["optimizer.type", "optimizer.momentum", "model.hidden"]


def test_study_settings_are_checked(write_spec) -> None:  # type: ignore[no-untyped-def]
    found = problems(
        write_spec,
        """\
search:
  metric: val/acuracy
  sampler: grid
  space:
    optimizer.lr: {type: float, low: 0.001, high: 0.1}
""",
    )
    assert any("grid sampler needs a `step`" in p for p in found), found
    found = problems(
        write_spec,
        """\
search:
  metric: val/acuracy
  space:
    optimizer.lr: {type: float, low: 0.001, high: 0.1}
""",
    )
    assert any(
        p.startswith("spec.yaml:14:") and "'val/acuracy' is not a metric this spec logs. Did you mean 'val/accuracy'?" in p for p in found
    ), found


def test_runner_validate_exits_2(write_spec, capsys) -> None:  # type: ignore[no-untyped-def]
    from runner.cli import main

    file = write_spec(TINY_SPEC + "search:\n  space:\n    optimizer.lr: {type: float, low: 0, high: 0.1, log: true}\n")
    assert main(["validate", str(file)]) == 2
    assert "spec.yaml:15:" in capsys.readouterr().err
