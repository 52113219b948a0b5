r"""Threshold folding: monotone binarizers exported as a plain `sign`.

A binarizer \\(q\\) whose forward pass is a per-channel threshold,
\\(q(y)_c = \operatorname{sign}(y_c - t_c)\\), costs nothing at inference if
\\(t\\) moves into the offset of the BatchNorm before it (notation of
`keras_bnn_af.converters.folding`):

\\[
q(\mathrm{BN}(x))_c
  = \operatorname{sign}\left(\gamma_c \frac{x_c - \mu_c}{\sigma_c}
    + (\beta_c - t_c)\right),
\\]

so the model with \\(\beta' = \beta - t\\) and `ste_sign` in place of \\(q\\)
has the operator graph of an `ste_sign` network, which Larq Compute Engine fuses
into the binary conv's output threshold (bit-packed output, no float
elementwise op). Max and average pooling (and inference-time dropout) commute
with subtracting a per-channel constant, so the BatchNorm may sit before them;
a `Reshape` passes a threshold that is the same on every channel. The BatchNorm
must pass `read_batch_norm(..., offset_required=True)`.

Thresholds come from `quantizer.monotone_threshold()`: `RSign` gives its
\\(\alpha\\), `GAAF` the \\(t\\) with \\(\mathrm{AF}(x) \geq 0 \iff x \geq t\\)
when AF is non-decreasing on every channel (learned parameters included), and
None for a non-monotone AF such as `sin`, which stays as it is. A threshold
binarizer with no BatchNorm to fold into becomes an `RSign` with
\\(\alpha = t\\) (one float `SUB`, which LCE folds into a binary conv's bias
when the conv's output is its input).

`fold_thresholds` returns the folded copy (made by `clone_with_quantizers`) and
one `ThresholdFold` per binary layer; the export checks that the copy gives the
original's top-1 on every verification sample before it uses it.
"""

from dataclasses import asdict, dataclass

import numpy as np

from keras_bnn_af._keras import keras
from keras_bnn_af.converters.folding.batch_norm import read_batch_norm
from keras_bnn_af.converters.twins import clone_with_quantizers, is_plain_sign

__all__ = ["ThresholdFold", "fold_thresholds"]

#: Layers `y -> f(y)` with `f(y) - t = f(y - t)` for a per-channel constant t.
_CHANNEL_COMMUTING = (
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.Dropout,
)


@dataclass(frozen=True)
class ThresholdFold:
    """What threshold folding did with one binary layer's input quantizer.

    # Attributes
        layer: the binary layer's name.
        quantizer: its input quantizer's class name.
        folded: whether the quantizer became a plain sign (`into` says where
            its threshold went).
        into: `"batch_norm:<name>"` (threshold subtracted from that
            BatchNorm's offset) or `"threshold"` (an `RSign` holding it), for
            folded layers.
        reason: why the layer was not folded, or a note on how it was.
    """

    layer: str
    quantizer: str
    folded: bool
    into: str | None = None
    reason: str = ""

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Plan:
    layer: keras.layers.Layer
    thresholds: np.ndarray
    batch_norm: keras.layers.Layer | None


def fold_thresholds(model: keras.Model) -> tuple[keras.Model, list[ThresholdFold]]:
    """A copy of `model` with every foldable threshold binarizer made a plain sign.

    # Arguments
        model: a functional or Sequential Keras model (its top-level layers
            are folded).

    # Returns
        `(folded, folds)`: the folded copy (`model` itself if nothing folds) and
        one `ThresholdFold` per layer with a non-sign input quantizer.
    """
    plans, folds = [], []
    for layer in model.layers:
        quantizer = getattr(layer, "input_quantizer", None)
        if quantizer is None or is_plain_sign(quantizer):
            continue
        plan, fold = _plan(model, layer, quantizer)
        folds.append(fold)
        if plan is not None:
            plans.append(plan)
    if not plans:
        return model, folds
    return _apply(model, plans), folds


def _plan(model, layer, quantizer) -> tuple[_Plan | None, ThresholdFold]:
    name = type(quantizer).__name__
    find = getattr(quantizer, "monotone_threshold", None)
    thresholds = find() if callable(find) else None
    if thresholds is None:
        return None, ThresholdFold(layer.name, name, False, reason=_why_not(quantizer))
    thresholds = np.asarray(thresholds, np.float32).reshape(-1)
    if not np.isfinite(thresholds).all():
        return None, ThresholdFold(
            layer.name,
            name,
            False,
            reason="the binarizer is constant (+1 or -1) on some channel, so its "
            "threshold is infinite and no BatchNorm offset can express it",
        )
    batch_norm, why = _batch_norm_before(model, layer, thresholds)
    if batch_norm is None:
        return _Plan(layer, thresholds, None), ThresholdFold(
            layer.name, name, True, into="threshold", reason=why
        )
    offsets = np.broadcast_to(thresholds[:1], batch_norm.beta.shape)
    if thresholds.size == offsets.size:
        offsets = thresholds
    return _Plan(layer, offsets, batch_norm), ThresholdFold(
        layer.name, name, True, into=f"batch_norm:{batch_norm.name}"
    )


def _why_not(quantizer) -> str:
    af = getattr(quantizer, "af", None)
    if af is not None:
        return (
            f"AF {af!r} is not non-decreasing on every channel, so sign(AF(x)) is "
            "not one threshold on x; LCE keeps the AF as float ops and re-quantizes"
        )
    return (
        f"{type(quantizer).__name__} has no per-channel threshold form "
        "(no monotone_threshold()), e.g. thresholds that vary over space"
    )


def _batch_norm_before(model, layer, thresholds) -> tuple[object | None, str]:
    """The BatchNorm whose offset can absorb `thresholds`, or None and why not."""
    uniform = bool(np.all(thresholds == thresholds[0]))
    current = layer
    while True:
        parents = _parents(model, current)
        if len(parents) != 1:
            return None, f"{current.name!r} has {len(parents)} inputs"
        parent = parents[0]
        if _consumers(model, parent) != 1:
            return None, f"{parent.name!r} feeds more than one layer"
        if isinstance(parent, keras.layers.BatchNormalization):
            return _usable_batch_norm(parent, thresholds, uniform)
        if isinstance(parent, _CHANNEL_COMMUTING) or (
            uniform and isinstance(parent, keras.layers.Reshape)
        ):
            current = parent
            continue
        return None, (
            f"its input comes from {parent.name!r} ({type(parent).__name__}), "
            "not from a BatchNorm through pooling"
        )


def _usable_batch_norm(batch_norm, thresholds, uniform) -> tuple[object | None, str]:
    try:
        channels = read_batch_norm(batch_norm, offset_required=True).channels
    except ValueError as error:
        return None, str(error)
    if not uniform and thresholds.size != channels:
        return None, (
            f"{thresholds.size} thresholds do not match the {channels} channels of "
            f"BatchNorm {batch_norm.name!r}"
        )
    return batch_norm, ""


def _parents(model, layer) -> list:
    nodes = [node for node in layer.inbound_nodes if node in _model_nodes(model)]
    if len(nodes) != 1:
        return []
    inbound = nodes[0].inbound_layers
    return list(inbound) if isinstance(inbound, list | tuple) else [inbound]


def _consumers(model, layer) -> int:
    nodes = _model_nodes(model)
    return sum(node in nodes for node in layer.outbound_nodes) + sum(
        output is layer for output in model._output_layers
    )


def _model_nodes(model) -> set:
    return {node for nodes in model._nodes_by_depth.values() for node in nodes}


def _apply(model: keras.Model, plans: list[_Plan]) -> keras.Model:
    """Plain signs where a BatchNorm takes the threshold (beta - t), else RSign(t)."""
    signs = {
        plan.layer.name: {
            "input_quantizer": "ste_sign" if plan.batch_norm is not None else "rsign"
        }
        for plan in plans
    }
    weights = {
        plan.layer.name: plan.thresholds for plan in plans if plan.batch_norm is None
    }
    folded = clone_with_quantizers(model, signs.get, weights=weights)
    for plan in plans:
        if plan.batch_norm is not None:
            beta = folded.get_layer(plan.batch_norm.name).beta
            beta.assign(beta.numpy() - plan.thresholds)
    return folded
