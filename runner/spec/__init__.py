"""The spec language: loading, validation with located errors, and the pydantic schema."""

from runner.spec.errors import Problem, SpecError
from runner.spec.load import load_source, load_spec, validate_data, with_overrides

__all__ = ["Problem", "SpecError", "load_source", "load_spec", "validate_data", "with_overrides"]
