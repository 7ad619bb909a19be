"""A run's per-epoch metrics as CSV, the file ``dvc plots`` draws (``runner run --history-out``)."""

from __future__ import annotations

import csv
from pathlib import Path


def write_history(history: list[dict[str, float]], path: Path) -> None:
    """One row per epoch: ``epoch`` then every metric logged that epoch, in first-seen order."""
    columns: list[str] = []
    for row in history:
        columns += [key for key in row if key not in columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["epoch", *columns])
        for epoch, row in enumerate(history, start=1):
            # repr keeps every bit of a float, so two identical runs write identical files.
            writer.writerow([epoch, *(repr(row[c]) if c in row else "" for c in columns)])
