"""Cross-field checks of the classical models: GLM family vs loss, closed form vs penalty."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.spec.test_load import problems

BASE = """\
name: c
data: {dataset: diabetes}
model: {type: glm, family: FAMILY}
loss: LOSS
optimizer: sgd
"""


def test_glm_family_must_fit_the_loss(write_spec: Callable[..., Path]) -> None:
    found = problems(write_spec(BASE.replace("FAMILY", "poisson").replace("LOSS", "mse")))
    assert len(found) == 1 and "a poisson GLM is fitted by poisson_nll, not 'mse'" in found[0]
    assert "loss.type" in found[0]


def test_closed_form_model_refuses_a_regularizer(write_spec: Callable[..., Path]) -> None:
    text = BASE.replace("{type: glm, family: FAMILY}", "least_squares").replace("LOSS", "mse")
    found = problems(write_spec(text + "regularizer: {l2: 0.1}\n"))
    assert len(found) == 1 and "solved in closed form, which ignores a regularizer" in found[0]
