"""Figure metrics (confusion matrix, ROC curve): drawn once from the test predictions and
logged as ``figures/<name>.png`` artifacts of the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner.tracking import record
from runner.training.loop import outputs_of
from runner.training.pipeline import Pipeline


def log_figures(pipeline: Pipeline, directory: Path, tracker: Any) -> list[Path]:
    """Draw every figure metric on the test part, save it under ``directory`` and log it
    (``directory`` must stay until the run has ended: the figures are stored meanwhile)."""
    if not pipeline.figures:
        return []
    outputs, targets = outputs_of(pipeline, pipeline.test)
    predictions = pipeline.head.predict(outputs)
    written = []
    for name, draw in pipeline.figures.items():
        path = directory / f"{Path(name).name}.png"  # names are checked; a path never leaves the folder
        draw(predictions, targets).savefig(path, dpi=100)
        tracker.log_artifact(path, record.FIGURES_DIR, kept=True)
        written.append(path)
    return written
