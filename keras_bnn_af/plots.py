"""Figures for training runs and reports (matplotlib, no display needed)."""

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)


def plot_history(history: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """Loss and accuracy per epoch, training against validation, as one PNG."""
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = range(1, len(history["loss"]) + 1)
    for axis, metric in ((loss_axis, "loss"), (accuracy_axis, "accuracy")):
        axis.plot(epochs, history[metric], marker="o", label="train")
        if f"val_{metric}" in history:
            axis.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)


def plot_confusion(matrix, path: str | Path, *, title: str = "") -> Path:
    """A confusion matrix (rows: true label, columns: prediction) as a PNG."""
    figure, axis = plt.subplots(figsize=(5, 4.5))
    image = axis.imshow(matrix, cmap="Blues")
    for (row, column), count in _cells(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        axis.text(
            column, row, str(count), ha="center", va="center", fontsize=7, color=colour
        )
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_xticks(range(matrix.shape[1]))
    axis.set_yticks(range(matrix.shape[0]))
    axis.set_title(title)
    figure.colorbar(image, ax=axis)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)


def _cells(matrix):
    for row in range(matrix.shape[0]):
        for column in range(matrix.shape[1]):
            yield (row, column), int(matrix[row, column])
