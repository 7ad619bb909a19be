"""Figures of the figure metrics, drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402


def matrix_figure(matrix: Any) -> Figure:
    """A confusion matrix as a heat map, rows = true class, columns = predicted class."""
    figure = Figure(figsize=(4 + 0.3 * len(matrix), 3.5 + 0.3 * len(matrix)))
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes)
    for (i, j), value in _cells(matrix):
        text = f"{value:.2f}" if float(value) != int(value) else str(int(value))
        axes.text(j, i, text, ha="center", va="center", fontsize=8)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title("confusion matrix (test)")
    return figure


def _cells(matrix: Any) -> list[tuple[tuple[int, int], float]]:
    return [((i, j), float(matrix[i][j])) for i in range(len(matrix)) for j in range(len(matrix[i]))]


def roc_figure(fpr: Any, tpr: Any, area: Any) -> Figure:
    """ROC curve(s): one for a binary task, one per class (one-vs-rest) otherwise."""
    figure = Figure(figsize=(4.5, 4.5))
    axes = figure.add_subplot()
    curves = [(fpr, tpr, float(area))] if not isinstance(fpr, (list, tuple)) else list(zip(fpr, tpr, area.tolist()))
    for k, (x, y, auc) in enumerate(curves):
        label = f"AUC {auc:.3f}" if len(curves) == 1 else f"class {k}: AUC {auc:.3f}"
        axes.plot(x.cpu().numpy(), y.cpu().numpy(), label=label)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.set_title("ROC curve (test)")
    axes.legend(loc="lower right", fontsize=8)
    return figure
