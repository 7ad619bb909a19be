"""The registry mechanism: one source of truth, loud on duplicates and typos."""

from __future__ import annotations

import pytest

import registry
from registry import NoParams, Params, Registry


def test_duplicate_names_fail_at_registration() -> None:
    reg: Registry = Registry("thing")
    reg.add("a", lambda p: p)
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("a", lambda p: p)


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(KeyError, match="Did you mean 'adam'"):
        registry.OPTIMIZERS.get("adma")


def test_params_must_be_a_params_model() -> None:
    reg: Registry = Registry("thing")
    with pytest.raises(TypeError):
        reg.add("a", lambda p: p, dict)  # type: ignore[arg-type]


def test_every_entry_has_a_summary_and_strict_params() -> None:
    for kind, reg in registry.REGISTRIES.items():
        for entry in reg:
            assert entry.summary, f"{kind}.{entry.name} has no docstring"
            assert issubclass(entry.params, Params)
            assert entry.params.model_config.get("extra") == "forbid"


def test_decorator_returns_the_builder() -> None:
    reg: Registry = Registry("thing")

    @reg.register("b")
    def build(params: NoParams) -> int:
        """B."""
        return 1

    assert build(NoParams()) == 1 and reg.get("b").builder is build
