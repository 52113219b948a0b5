r"""Rounding ties: a differing sample explained by binarizer inputs at a threshold.

```python
tied = explain_ties(model, inputs, keras_outputs, lce_outputs, differing, 1e-3)
[(t.sample, t.explained, [(f.layer, f.index, f.ulps) for f in t.flipped]) for t in tied]
```

LCE folds a BatchNorm (and bias) into a binary conv's output threshold and
rounds differently from Keras, so a binarizer input \\(a\\) within a few
float32 ulps of a threshold may binarize to the other sign there, and one
flipped bit moves a random network's logits by about 0.1. Such an element is a
*tie candidate* if \\(q(a - \varepsilon) \neq q(a + \varepsilon)\\) for the
layer's input quantizer \\(q\\) and
\\(\varepsilon = 16\,\epsilon_{32} \max|a|\\) (the largest input of that layer
and sample, \\(\epsilon_{32} = 2^{-23}\\)).

A candidate explains nothing by itself: a sample with an input at a threshold
may still differ for a real reason. So the Keras model is re-run on the sample
with its candidates binarized to fixed sides, one assignment per row, and the
sample counts as a tie only if one assignment reproduces Keras's output and
another reproduces the interpreter's, both within the tolerance: the two then
differ by the sides of the candidates where those assignments differ, and by
nothing else. (Fixing every candidate matters: `model.predict` runs a graph
that may fuse a BatchNorm and round a tie otherwise than the unfused model
the candidates are read from.) Candidates flip in groups: those of one layer,
channel and input value, which LCE's integer threshold for that channel
treats alike. The assignments tried: the sides seen when the candidates were
read, then each group flipped alone, then, for at most `MAX_EXHAUSTIVE` groups,
every other combination, else the closest-first prefixes (the two closest
groups flipped, the three closest, ...). Candidates are
read in the top-level layers with a binary input quantizer that are called
once; flips propagate, so a flip upstream is seen by every later layer.
"""

import itertools
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from keras_bnn_af._keras import keras, tf
from keras_bnn_af.models import has_binary_input

__all__ = ["MAX_EXHAUSTIVE", "TIE_ULPS", "Tie", "TiedSample", "explain_ties"]

#: Half-width of the tie window, in float32 ulps of the layer's largest input.
TIE_ULPS = 16
#: Up to this many groups of candidates, every combination of flips is tried.
MAX_EXHAUSTIVE = 6
#: At most this many candidates per sample are considered, closest first.
MAX_CANDIDATES = 64
_EPS32 = float(np.finfo(np.float32).eps)
_BISECTIONS = 30


@dataclass(frozen=True)
class Tie:
    """One binarizer input at a threshold.

    # Attributes
        layer: the binary layer whose input quantizer it feeds.
        index: its position in the layer input, batch axis dropped.
        value: the input, as the unfused Keras model computes it.
        distance: |value - the threshold| (found by bisection).
        ulps: `distance` in float32 ulps of the largest input of that layer
            and sample (at most `TIE_ULPS`).
        sides: the binarized value at `value`, and on the threshold's other
            side.
    """

    layer: str
    index: tuple[int, ...]
    value: float
    distance: float
    ulps: float
    sides: tuple[float, float]

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"index": list(self.index), "sides": list(self.sides)}


@dataclass(frozen=True)
class TiedSample:
    """A differing sample with tie candidates, and whether flips explain it.

    # Attributes
        sample: its index among the verification samples.
        candidates: its tie candidates, closest first.
        flipped: the candidates Keras and the interpreter binarize to
            different sides; empty when no assignment reproduces both outputs
            (`explained` is False).
        binarized: per flipped candidate, its value in Keras and in LCE.
        explained: whether the re-runs reproduced both outputs.
        max_abs_diff: |re-run - TFLite| for the assignment reproducing the
            interpreter; the smallest over all assignments when unexplained.
    """

    sample: int
    candidates: tuple[Tie, ...]
    flipped: tuple[Tie, ...]
    binarized: tuple[tuple[float, float], ...]
    explained: bool
    max_abs_diff: float

    def to_json(self) -> dict[str, Any]:
        flipped = [
            tie.to_json() | {"keras": keras, "lce": lce}
            for tie, (keras, lce) in zip(self.flipped, self.binarized, strict=True)
        ]
        return {
            "sample": self.sample,
            "explained": self.explained,
            "max_abs_diff": self.max_abs_diff,
            "flipped": flipped,
            "candidates": [tie.to_json() for tie in self.candidates],
        }


def explain_ties(
    model: keras.Model,
    inputs: np.ndarray,
    keras_outputs: np.ndarray,
    lce_outputs: np.ndarray,
    differing,
    tolerance: float,
) -> list[TiedSample]:
    """The `differing` samples that have tie candidates, each explained or not.

    # Arguments
        model: the Keras model that was exported.
        inputs: every verification sample.
        keras_outputs: `model.predict(inputs)`.
        lce_outputs: the interpreter's outputs, shaped like the model's.
        differing: indices of the samples whose outputs differ beyond
            `tolerance`.
        tolerance: the largest |Keras - TFLite| accepted on a sample.

    # Returns
        One `TiedSample` per differing sample with at least one candidate, in
        sample order. A differing sample without candidates is a plain mismatch
        and is not listed.
    """
    differing = np.asarray(differing, dtype=int)
    layers = _binary_layers(model)
    if not len(differing) or not layers:
        return []
    candidates = _candidates(model, layers, inputs[differing])
    found = [(i, ties) for i, ties in zip(differing, candidates, strict=True) if ties]
    if not found:
        return []
    rerun = _FlippingModel(model, layers)
    return [
        _explained(
            rerun, inputs[i], keras_outputs[i], lce_outputs[i], int(i), ties, tolerance
        )
        for i, ties in found
    ]


def _binary_layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [
        layer
        for layer in model.layers
        if has_binary_input(layer) and len(layer.inbound_nodes) == 1
    ]


# --- candidates ----------------------------------------------------------------------


def _candidates(model, layers, inputs: np.ndarray) -> list[list[Tie]]:
    """Per sample, its tie candidates over all `layers`, closest first."""
    probe = keras.Model(model.inputs, [layer.input for layer in layers])
    activations = probe.predict(inputs, verbose=0)
    if len(layers) == 1:
        activations = [activations]
    per_sample: list[list[Tie]] = [[] for _ in inputs]
    for layer, values in zip(layers, activations, strict=True):
        values = np.asarray(values, np.float32)
        for sample, tie in _layer_ties(layer, values):
            per_sample[sample].append(tie)
    return [sorted(ties, key=lambda t: t.ulps)[:MAX_CANDIDATES] for ties in per_sample]


def _layer_ties(layer, values: np.ndarray):
    """(sample, `Tie`) for every element of `values` at a threshold of the
    layer's input quantizer."""
    quantize = layer.input_quantizer
    scale = _scale(values)
    epsilon = TIE_ULPS * _EPS32 * scale
    low, high = values - epsilon, values + epsilon
    low_side, high_side = _q(quantize, low), _q(quantize, high)
    tied = low_side != high_side
    if not tied.any():
        return
    output = _q(quantize, values)
    flipped_output = np.where(output == low_side, high_side, low_side)
    for _ in range(_BISECTIONS):  # the threshold lies between low and high
        middle = np.where(tied, (low + high) / 2, values).astype(np.float32)
        same = _q(quantize, middle) == low_side
        low = np.where(tied & same, middle, low)
        high = np.where(tied & ~same, middle, high)
    distance = np.abs(values - (low + high) / 2)
    ulps = distance / (_EPS32 * np.broadcast_to(scale, values.shape))
    for position in zip(*np.nonzero(tied), strict=True):
        yield (
            int(position[0]),
            Tie(
                layer=layer.name,
                index=tuple(int(p) for p in position[1:]),
                value=float(values[position]),
                distance=float(distance[position]),
                ulps=round(float(ulps[position]), 3),
                sides=(float(output[position]), float(flipped_output[position])),
            ),
        )


def _scale(values: np.ndarray) -> np.ndarray:
    """max |a| per sample, broadcastable to `values`."""
    return np.abs(values).max(axis=tuple(range(1, values.ndim)), keepdims=True)


def _q(quantize, values: np.ndarray) -> np.ndarray:
    return np.asarray(quantize(tf.constant(values, tf.float32)))


# --- flipped re-runs -----------------------------------------------------------------


def _explained(
    rerun, sample, keras_output, lce_output, index, ties, tolerance
) -> TiedSample:
    """Assignments of the ties that reproduce Keras's and LCE's outputs, if any."""
    groups = _groups(ties)
    combinations = [
        tuple(sorted(i for g in chosen for i in groups[g]))
        for chosen in _combinations(len(groups))
    ]
    outputs = rerun(sample, ties, combinations)
    to_keras, to_lce = (
        np.abs(outputs - target[None]).reshape(len(outputs), -1).max(-1)
        for target in (keras_output, lce_output)
    )
    keras_rows = np.flatnonzero(to_keras <= tolerance)
    lce_rows = np.flatnonzero(to_lce <= tolerance)
    if not len(keras_rows) or not len(lce_rows):
        return TiedSample(index, tuple(ties), (), (), False, float(to_lce.min()))
    keras_flips = set(combinations[keras_rows[0]])
    lce_flips = set(combinations[lce_rows[0]])
    differing = sorted(keras_flips ^ lce_flips)
    binarized = tuple(
        (ties[i].sides[i in keras_flips], ties[i].sides[i in lce_flips])
        for i in differing
    )
    flipped = tuple(ties[i] for i in differing)
    return TiedSample(
        index, tuple(ties), flipped, binarized, True, float(to_lce[lce_rows[0]])
    )


def _groups(ties: list[Tie]) -> list[tuple[int, ...]]:
    """Ties flipped together: same layer, channel (last axis) and value.

    In both Keras and LCE one channel's binarizer sees the same input for the
    same accumulator value wherever it occurs, so LCE rounds all of them the
    same way. Closest group first.
    """
    groups: dict[tuple, list[int]] = {}
    for i, tie in enumerate(ties):
        groups.setdefault((tie.layer, tie.index[-1:], tie.value), []).append(i)
    return [tuple(members) for members in groups.values()]


def _combinations(count: int) -> list[tuple[int, ...]]:
    """The candidates flipped per assignment, in the order tried (module doc)."""
    if count <= MAX_EXHAUSTIVE:
        subsets = [
            c
            for size in range(1, count + 1)
            for c in itertools.combinations(range(count), size)
        ]
    else:
        singles = [(i,) for i in range(count)]
        subsets = singles + [tuple(range(n)) for n in range(2, count + 1)]
    return [(), *subsets]


class _FlippingModel:
    """A copy of the model whose binarizers output chosen values at the ties.

    The copy is made once (`clone_with_quantizers`, every weight copied) and
    called eagerly, so each binary layer's wrapped quantizer reads the values
    of the current call. Every tie candidate gets a fixed side in every row:
    `Tie.sides[0]`, or `Tie.sides[1]` where the row flips it. A fixed side
    applies while the element is still at its threshold in the re-run; after
    a flip upstream it may not be, and then it binarizes as it is.
    """

    def __init__(self, model: keras.Model, layers):
        from keras_bnn_af.converters.twins import clone_with_quantizers

        self._model = clone_with_quantizers(model, lambda name: None)
        self._fixed: dict[str, np.ndarray] = {}
        self._shapes = {}
        for layer in layers:
            copy = self._model.get_layer(layer.name)
            copy.input_quantizer = _fixing(copy.input_quantizer, layer.name, self)
            self._shapes[layer.name] = tuple(layer.input.shape[1:])

    def __call__(self, sample, ties: list[Tie], combinations) -> np.ndarray:
        """The outputs for `sample`, one row per combination of flipped `ties`."""
        rows = len(combinations)
        self._fixed = {
            layer: np.full((rows, *shape), np.nan, np.float32)
            for layer, shape in self._shapes.items()
        }
        for row, flipped in enumerate(combinations):
            for i, tie in enumerate(ties):
                value = tie.sides[i in flipped]
                self._fixed[tie.layer][(row, *tie.index)] = value
        batch = tf.constant(np.repeat(sample[None], rows, axis=0))
        try:
            return np.asarray(self._model(batch, training=False))
        finally:
            self._fixed = {}

    def fixed(self, layer: str) -> np.ndarray | None:
        return self._fixed.get(layer)


def _fixing(quantize, layer: str, owner: _FlippingModel):
    """`quantize`, with the values `owner` fixes at elements still at a threshold."""

    def fixed(x):
        out = quantize(x)
        values = owner.fixed(layer)
        if values is None:
            return out
        epsilon = TIE_ULPS * _EPS32 * _scale(np.asarray(x))
        tied = np.asarray(quantize(x - epsilon)) != np.asarray(quantize(x + epsilon))
        use = tied & ~np.isnan(values)
        return tf.where(use, tf.constant(np.nan_to_num(values), out.dtype), out)

    return fixed
