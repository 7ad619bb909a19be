"""A generic name -> builder registry whose entries carry their own typed parameters.

One registry per component kind (models, losses, ...). Each entry is a plain builder function
registered together with a pydantic ``Params`` model, so that spec validation, ``runner list``
and ``runner schema`` all read the same source. Builders import torch inside their bodies so
that validating a spec never imports it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, Literal, TypeVar, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

F = TypeVar("F", bound=Callable[..., Any])


class Params(BaseModel):
    """Base of every component's parameter model: unknown keys are errors, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class NoParams(Params):
    """For components without parameters."""


@dataclass(frozen=True)
class Entry(Generic[F]):
    """A registered component: its spec name, builder, parameter model, summary and metadata.

    ``meta`` holds kind-specific facts that cross-field checks read without building anything
    (e.g. which task a loss serves).
    """

    name: str
    builder: F
    params: type[Params]
    summary: str
    meta: dict[str, Any] = field(default_factory=dict)


def closest(name: str, known: list[str]) -> str | None:
    """The known name a misspelt one most likely meant, or None when nothing is close."""
    matches = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if matches:
        return matches[0]
    # scikit-learn's and torch's longer names (f1_score, accuracy_score) begin with ours.
    prefixes = [k for k in known if name.lower().startswith(f"{k}_")]
    return max(prefixes, key=len) if prefixes else None


class Registry(Generic[F]):
    """Named builders of one component kind, e.g. ``MODELS.register("mlp", params=MLPParams)``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[F]] = {}
        self._field_type: Any = None

    def register(self, name: str, *, params: type[Params] = NoParams, **meta: Any) -> Callable[[F], F]:
        """Register the decorated builder under ``name``; a duplicate name fails at import."""

        def decorate(builder: F) -> F:
            self.add(name, builder, params, **meta)
            return builder

        return decorate

    def add(self, name: str, builder: F, params: type[Params] = NoParams, **meta: Any) -> None:
        """Register ``builder`` (used by the decorator and by entry-point plugins)."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        if not (isinstance(params, type) and issubclass(params, Params)):
            raise TypeError(f"{self.kind} {name!r}: params must subclass registry.Params")
        doc = (builder.__doc__ or "").strip().splitlines()
        self._entries[name] = Entry(name, builder, params, doc[0] if doc else "", dict(meta))
        self._field_type = None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[F]]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._entries)

    def get(self, name: str) -> Entry[F]:
        """The entry for ``name``; an unknown name fails with the closest match and the list."""
        try:
            return self._entries[name]
        except KeyError:
            hint = closest(name, self.names())
            did_you_mean = f" Did you mean {hint!r}?" if hint else ""
            raise KeyError(f"Unknown {self.kind} {name!r}.{did_you_mean} Known: {', '.join(self.names())}.") from None

    def field_type(self) -> Any:
        """The pydantic type of a spec field naming one of these components.

        A discriminated union on ``type`` over every entry's parameter model, so that pydantic
        reports an unknown name as a bad tag and a bad parameter under its own path, and the
        JSON Schema lists every component. A bare string is shorthand for ``{type: NAME}``.
        """
        if self._field_type is None:
            members = [_tagged(self.kind, e.name, e.params) for e in self]
            union: Any = members[0] if len(members) == 1 else Union[tuple(members)]  # noqa: UP007
            self._field_type = Annotated[
                union,
                Field(discriminator="type"),
                BeforeValidator(_expand_shorthand),
            ]
        return self._field_type


def _expand_shorthand(value: Any) -> Any:
    return {"type": value} if isinstance(value, str) else value


def _tagged(kind: str, name: str, params: type[Params]) -> type[Params]:
    """``params`` with a ``type: Literal[name]`` field, as one member of the tagged union."""
    model = create_model(
        f"{kind}.{name}",
        __base__=params,
        __doc__=params.__doc__,
        type=(Literal[name], Field(description=f"The {kind} to use.")),  # type: ignore[arg-type]  # a Literal of a run-time name
    )
    return model
