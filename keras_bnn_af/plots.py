"""Figures for training runs and reports (matplotlib, no display needed).

Every function writes one PNG to `path`, whose folder must exist (checked
before drawing: a missing folder is a `ValueError` naming the fix).
"""

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np

from keras_bnn_af._files import check_output_file
from keras_bnn_af._keras import keras, tf
from keras_bnn_af.quantizers import binarizer_factory

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)


def plot_history(history: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """Loss and accuracy per epoch, training against validation, as one PNG."""
    check_output_file(path)
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


def plot_search_history(scores: Sequence[float], path: str | Path) -> Path:
    """Fitness of each completed trial, in start order, and the best so far."""
    check_output_file(path)
    figure, axis = plt.subplots(figsize=(6, 3.5))
    trials = np.arange(1, len(scores) + 1)
    if len(scores):
        axis.plot(trials, scores, "o", markersize=4, alpha=0.6, label="trial")
        axis.plot(trials, np.maximum.accumulate(scores), label="best so far")
        axis.legend()
    axis.set_xlabel("completed trial")
    axis.set_ylabel("fitness (validation accuracy)")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)


def plot_pareto(
    accuracy: Sequence[float],
    latency_ms: Sequence[float],
    front: Sequence[int],
    path: str | Path,
    *,
    baseline_ms: float | None = None,
    budget_ms: float | None = None,
    title: str = "",
) -> Path:
    """Accuracy against latency of every trial, the Pareto front highlighted.

    `front` indexes the front's points; `baseline_ms` (the `ste_sign` net's
    latency) and `budget_ms` are drawn as vertical lines.
    """
    check_output_file(path)
    figure, axis = plt.subplots(figsize=(6, 4))
    x, y = np.asarray(latency_ms, float), np.asarray(accuracy, float)
    axis.plot(x, y, "o", color="0.6", markersize=4, label="trial")
    if len(front):
        order = sorted(front, key=lambda i: x[i])
        axis.plot(x[order], y[order], "o-", color="C3", label="Pareto front")
    for value, style, label in (
        (baseline_ms, "--", "ste_sign net"),
        (budget_ms, ":", "latency budget"),
    ):
        if value is not None:
            axis.axvline(
                value, linestyle=style, color="k", label=f"{label} ({value:.3g} ms)"
            )
    axis.set_xlabel("latency (ms)")
    axis.set_ylabel("validation accuracy")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)


def plot_confusion(matrix, path: str | Path, *, title: str = "") -> Path:
    """A confusion matrix (rows: true label, columns: prediction) as a PNG."""
    check_output_file(path)
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


def plot_binarizer(
    quantizer,
    path: str | Path,
    *,
    x_range: tuple[float, float] = (-3.0, 3.0),
    title: str | None = None,
) -> Path:
    """Draws a binarizer: its real-valued function, the binarized output, the gradient.

    `quantizer` is a Larq quantizer or any binarizer spec
    (`keras_bnn_af.quantizers.binarizer_factory`), e.g. `"gaaf:sin_x"`. The
    real-valued function is the binarizer's `preactivation(x)` where it has one
    (GAAF's AF(x), RSign's x - alpha, ...) and x otherwise; the pseudo-gradient is
    d output / d x as the binarizer's custom gradient defines it. Values are fed
    as a batch of 1x1x1 maps, so per-channel parameters are those of channel 0.
    """
    check_output_file(path)
    curves = binarizer_curves(quantizer, x_range=x_range)
    figure, axes = plt.subplots(1, 3, figsize=(11, 3.2), sharex=True)
    panels = ["real-valued function", "binarized output", "pseudo-gradient"]
    keys = ["function", "output", "gradient"]
    for axis, key, panel in zip(axes, keys, panels, strict=True):
        axis.plot(curves["x"], curves[key], linewidth=1.8)
        axis.axhline(0, color="grey", linewidth=0.6)
        axis.axvline(0, color="grey", linewidth=0.6)
        axis.set_title(panel)
        axis.set_xlabel("x")
        axis.grid(alpha=0.3)
    figure.suptitle(title or curves["name"])
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)


def binarizer_curves(quantizer, *, x_range=(-3.0, 3.0), points: int = 601) -> dict:
    """The values `plot_binarizer` draws, as NumPy arrays keyed by curve."""
    if isinstance(quantizer, keras.layers.Layer) and quantizer.built:
        # A trained instance keeps its parameters: give every channel the same x.
        per_channel = [w.shape[-1] for w in quantizer.weights if w.shape.rank == 1]
        channels = max(per_channel, default=1)
    else:
        quantizer, channels = binarizer_factory(quantizer)(), 1
    values = np.linspace(*x_range, points, dtype=np.float32).reshape(-1, 1, 1, 1)
    x = tf.constant(np.repeat(values, channels, axis=-1))
    with tf.GradientTape() as tape:
        tape.watch(x)
        output = quantizer(x)
    gradient = tape.gradient(output, x)
    preactivation = getattr(quantizer, "preactivation", None)
    function = preactivation(x) if preactivation is not None else x
    name = getattr(quantizer, "name", getattr(quantizer, "__name__", str(quantizer)))
    return {
        "name": name,
        "x": values.reshape(-1),
        "function": _channel_zero(function),
        "output": _channel_zero(output),
        "gradient": _channel_zero(tf.zeros_like(x) if gradient is None else gradient),
    }


def _channel_zero(values) -> np.ndarray:
    return np.asarray(values)[..., 0].reshape(-1)
