"""Spec problems located at ``file:line:column`` and reported all together."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: A mapping key (YAML allows numbers as keys) or a list index.
Key = str | int | float
Path = tuple[Key, ...]


@dataclass(frozen=True)
class Location:
    """Where a value came from: a file and 1-based line and column, or a ``--set`` argument."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}" if self.line else self.file


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec: where, which field, and why."""

    location: Location
    path: str
    message: str

    def __str__(self) -> str:
        field = f"{self.path}: " if self.path else ""
        return f"{self.location}: {field}{self.message}"


def dotted(path: Iterable[Key]) -> str:
    """``("model", "hidden", 0)`` -> ``model.hidden[0]``."""
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text


class SpecError(Exception):
    """A spec that cannot be run; holds every problem found, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.location.file, p.location.line, p.location.column, p.path))
        super().__init__(self.render())

    def render(self) -> str:
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in spec:"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])
