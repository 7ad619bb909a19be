"""Human-facing tables: final metrics and the component registry, rendered with rich."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from registry import Registry


def _console() -> Any:
    from rich.console import Console

    return Console()


def write_metrics(path: Path, metrics: dict[str, float]) -> None:
    """``--metrics-out``: the numbers as sorted JSON, the file DVC tracks and ``runner check`` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")


def print_metrics(name: str, metrics: dict[str, float], run_id: str | None, model_uri: str | None = None) -> None:
    """The final metrics of a run, and where to find it (and the model it logged) in MLflow."""
    from rich.table import Table

    table = Table(title=f"{name}: final metrics")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in sorted(metrics):
        table.add_row(key, f"{metrics[key]:.6g}")
    console = _console()
    console.print(table)
    if run_id:
        console.print(f"MLflow run: {run_id}")
    if model_uri:
        console.print(f"MLflow model: {model_uri}", soft_wrap=True)


def print_summary(name: str, outcome: Any) -> None:
    """A CV or multi-seed run: each metric's mean, std and 95% interval over the members."""
    from rich.table import Table

    table = Table(title=f"{name}: {len(outcome.members)} runs ({outcome.mode})")
    for column in ("metric", "mean", "std", "95% interval"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for key in sorted(outcome.summary):
        s = outcome.summary[key]
        table.add_row(key, f"{s.mean:.6g}", f"{s.std:.3g}", f"[{s.low:.6g}, {s.high:.6g}]")
    console = _console()
    console.print(table)
    console.print(f"mode: {outcome.mode} ({outcome.mode_reason})")
    if outcome.run_id:
        console.print(f"MLflow parent run: {outcome.run_id}")


def describe_field(name: str, info: FieldInfo) -> str:
    """``lr: float = 0.001  Step size.``"""
    annotation = getattr(info.annotation, "__name__", None) or str(info.annotation).replace("typing.", "")
    default = (
        "required"
        if info.default is PydanticUndefined and info.default_factory is None
        else repr(info.get_default(call_default_factory=True, validated_data={}))
    )
    text = f"{name}: {annotation} = {default}"
    return f"{text}  {info.description}" if info.description else text


def _plain(text: str) -> str:
    return text.replace("``", "")


def print_registry(registries: dict[str, Registry]) -> None:
    """Every component of the given kinds, with its parameters and defaults."""
    from rich.table import Table

    console = _console()
    for kind, registry in registries.items():
        table = Table(title=kind, show_lines=True, expand=False)
        table.add_column("name", style="bold")
        table.add_column("what it is")
        table.add_column("parameters (type = default)")
        for entry in registry:
            fields = [describe_field(n, f) for n, f in entry.params.model_fields.items() if n != "type"]
            # Docstrings mark code as ``name`` (reStructuredText); a table reads better without.
            table.add_row(entry.name, _plain(entry.summary), _plain("\n".join(fields)) or "-")
        console.print(table)
