r"""BatchNorm followed by a sign, folded into one comparison per channel.

```python
folded = fold_batch_norm_sign(model.get_layer("batch_normalization"))
binary = folded.apply(features)  # == sign(BN(features)), computed as comparisons
params = read_batch_norm(layer)  # the checked parameters both folds start from
```

Self-Binarizing Networks' "binary BatchNorm" (notation of
`keras_bnn_af.converters.folding`): with \\(\sigma = \sqrt{v + \epsilon}\\),

\\[
\operatorname{sign}\left(\gamma \frac{x - \mu}{\sigma} + \beta\right)
  = \operatorname{sign}\left(s\,(x - \tau)\right), \qquad
  s = \operatorname{sign}(\gamma), \quad \tau = \mu - \frac{\beta \sigma}{\gamma},
\\]

for \\(\gamma \neq 0\\), with \\(\operatorname{sign}(0) = +1\\) on both sides,
including at \\(x = \tau\\). Multiplying by \\(\sigma / |\gamma| > 0\\) keeps signs:
\\(\operatorname{BN}(x) \geq 0 \iff s\,(x - \tau) \geq 0\\), so for
\\(\gamma > 0\\) the output is +1 iff \\(x \geq \tau\\), and for \\(\gamma < 0\\)
iff \\(x \leq \tau\\) (where \\(s(x - \tau) = -0\\) at \\(x = \tau\\), which also
gives +1). For \\(\gamma = 0\\), \\(\operatorname{BN}(x) = \beta\\) and the output is
the constant \\(\operatorname{sign}(\beta)\\): `flip = +1` with
\\(\tau = -\infty\\) if \\(\beta \geq 0\\) and \\(\tau = +\infty\\) otherwise.

**What "exact" means here.** The reference is real arithmetic on the given
parameter values (\\(\gamma, \beta, \mu, v, \epsilon\\) taken as the exact
numbers their floats denote). \\(\tau\\) is irrational in general; `threshold` is
the float64 number that makes the comparison exact for every float64 \\(x\\):
the smallest float64 \\(t\\) with \\(\operatorname{BN}(t) \geq 0\\) for
\\(\gamma > 0\\), the largest for \\(\gamma < 0\\). It is found by bisection on
an exact rational test (\\(\operatorname{BN}(x) \geq 0 \iff \gamma(x - \mu) +
\beta\sigma \geq 0\\), decided by comparing squares), not by the rounded formula.
A float32 (or float16) \\(x\\) is compared against `threshold_for(x.dtype)`, the
float64 threshold rounded *outward* (up for `flip = +1`, down for `flip = -1`),
which gives exactly the same decisions as comparing \\(x\\) with the float64
threshold. So `apply` equals the exact \\(\operatorname{sign}(\operatorname{BN}(x))\\)
everywhere. A float32 BatchNorm layer followed by a sign (Keras computes
\\(x \cdot g + (\beta - \mu g)\\) with \\(g = \gamma / \sigma\\) rounded to float32)
can differ from it where its own rounding error exceeds \\(|\operatorname{BN}(x)|\\),
i.e. for \\(x\\) within a few float32 ulps (relative to \\(|x|\\), \\(|\mu|\\) and
\\(|\beta\sigma/\gamma|\\)) of the threshold; so can a float64 evaluation, within
a few float64 ulps. Those differences are rounding in the BatchNorm, not in the fold.
"""

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

import larq as lq
import numpy as np

from keras_bnn_af._keras import keras, tf

__all__ = [
    "BatchNormParameters",
    "FoldedSign",
    "fold_batch_norm_sign",
    "read_batch_norm",
]

_PARAMETERS = ("gamma", "beta", "moving_mean", "moving_variance", "epsilon")
_MAX_KEY = 0x7FEFFFFFFFFFFFFF  # the order key of the largest finite float64


@dataclass(frozen=True, eq=False)
class BatchNormParameters:
    r"""A BatchNorm's inference parameters, checked, per channel (last axis).

    # Attributes
        gamma, beta, mean, variance: float64 arrays of shape `(C,)`:
            \\(\gamma\\) (1 without a scale), \\(\beta\\) (0 without an
            offset), \\(\mu\\) and \\(v\\).
        epsilon: \\(\epsilon\\).
    """

    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    variance: np.ndarray
    epsilon: float

    @property
    def channels(self) -> int:
        return int(self.gamma.shape[0])


@dataclass(frozen=True, eq=False)
class FoldedSign:
    r"""`sign(BN(x))` as `sign(flip * (x - threshold))`, per channel (last axis).

    # Arguments
        threshold: float64 array of shape `(C,)`; may hold \\(\pm\infty\\) (for
            \\(\gamma = 0\\), or a threshold beyond the float64 range).
        flip: float64 array of shape `(C,)` with values +1 or -1: the sign of
            \\(\gamma\\) (+1 for \\(\gamma = 0\\)).
    """

    threshold: np.ndarray
    flip: np.ndarray

    def threshold_for(self, dtype) -> np.ndarray:
        """The threshold rounded outward to `dtype`, keeping every decision exact.

        For `flip = +1` it is the smallest `dtype` value `>= threshold`, for
        `flip = -1` the largest `<= threshold`; so for any `x` of that dtype,
        `x >= t` (or `x <= t`) holds exactly when it holds for the float64
        threshold.
        """
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise ValueError(
                f"Received dtype {dtype}; expected a NumPy floating dtype such as "
                "float32 or float64. Cast the input to a float type first."
            )
        if dtype.itemsize >= 8:
            return self.threshold.astype(dtype)
        with np.errstate(over="ignore"):
            rounded = self.threshold.astype(dtype)
        wide = rounded.astype(np.float64)
        up = (self.flip > 0) & (wide < self.threshold)
        down = (self.flip < 0) & (wide > self.threshold)
        rounded = np.where(up, np.nextafter(rounded, dtype.type(np.inf)), rounded)
        return np.where(down, np.nextafter(rounded, dtype.type(-np.inf)), rounded)

    def apply(self, x) -> np.ndarray:
        """NumPy: +1/-1 of `x`'s float dtype (float64 for other inputs)."""
        x = np.asarray(x)
        if x.dtype.kind != "f":
            x = x.astype(np.float64)
        self._check_channels(x.shape)
        t = self.threshold_for(x.dtype)
        positive = np.where(self.flip > 0, x >= t, x <= t)
        return np.where(positive, 1, -1).astype(x.dtype)

    def apply_tf(self, x) -> tf.Tensor:
        """TensorFlow: `larq.math.sign(flip * (x - t))`, which LCE binarizes.

        Exact like `apply`, except where `x`, the threshold or their difference
        is a subnormal number (magnitude below about 1.2e-38 in float32):
        TensorFlow's CPU kernels flush those to zero, which reads as +1.
        """
        x = tf.convert_to_tensor(x)
        if not x.dtype.is_floating:
            x = tf.cast(x, tf.float32)
        self._check_channels(tuple(x.shape))
        t = tf.constant(self.threshold_for(x.dtype.as_numpy_dtype), dtype=x.dtype)
        flip = tf.constant(self.flip, dtype=x.dtype)
        return lq.math.sign(flip * (x - t))

    def _check_channels(self, shape) -> None:
        channels = self.threshold.shape[0]
        if not shape or shape[-1] not in (channels, None):
            raise ValueError(
                f"Received input of shape {tuple(shape)}; expected the last axis to "
                f"have the {channels} channels of the folded BatchNorm. Apply it to "
                "the (channels-last) input of that BatchNorm."
            )


def read_batch_norm(
    batch_norm, *, offset_required: bool = False
) -> BatchNormParameters:
    r"""The parameters of an inference-mode BatchNorm, checked for folding.

    # Arguments
        batch_norm: a built `keras.layers.BatchNormalization` normalizing the last
            axis, or a mapping with `moving_mean`, `moving_variance` and optionally
            `gamma` (default 1), `beta` (default 0) and `epsilon` (default 1e-3),
            each a scalar or a `(C,)` array.
        offset_required: refuse a layer without an offset (`center=False`), which
            cannot absorb a threshold.

    # Returns
        `BatchNormParameters` with every array of shape `(C,)`.

    # Raises
        ValueError: for a layer of another kind, not built, normalizing another
            axis, or (with `offset_required`) without an offset; for a mapping
            with missing or unknown keys; for non-finite parameters or
            \\(v + \epsilon \leq 0\\).
    """
    if isinstance(batch_norm, keras.layers.Layer):
        values = _layer_parameters(batch_norm, offset_required)
    elif isinstance(batch_norm, Mapping):
        values = _mapping_parameters(batch_norm)
    else:
        raise ValueError(
            f"Cannot fold {batch_norm!r} (type {type(batch_norm).__name__}); "
            "expected a keras.layers.BatchNormalization layer or a mapping of its "
            "parameters. Pass one of those."
        )
    return _checked(values)


def fold_batch_norm_sign(batch_norm) -> FoldedSign:
    r"""Folds an inference-mode BatchNorm and a following sign into comparisons.

    # Arguments
        batch_norm: what `read_batch_norm` accepts: a built
            `keras.layers.BatchNormalization` normalizing the last axis, or a
            mapping of its parameters.

    # Returns
        A `FoldedSign` whose `apply(x)` equals
        \\(\operatorname{sign}(\operatorname{BN}(x))\\) exactly (see the module
        docstring).

    # Raises
        ValueError: see `read_batch_norm`.
    """
    bn = read_batch_norm(batch_norm)
    threshold = np.empty(bn.gamma.shape, np.float64)
    flip = np.where(bn.gamma < 0, -1.0, 1.0)
    for c in range(bn.channels):
        if bn.gamma[c] == 0:
            threshold[c] = -math.inf if bn.beta[c] >= 0 else math.inf
        else:
            threshold[c] = _exact_threshold(
                float(bn.gamma[c]),
                float(bn.beta[c]),
                float(bn.mean[c]),
                float(bn.variance[c]),
                bn.epsilon,
            )
    threshold.setflags(write=False)
    flip.setflags(write=False)
    return FoldedSign(threshold=threshold, flip=flip)


def _mapping_parameters(parameters: Mapping) -> dict:
    unknown = sorted(set(parameters) - set(_PARAMETERS))
    missing = [k for k in ("moving_mean", "moving_variance") if k not in parameters]
    if unknown or missing:
        raise ValueError(
            f"Received BatchNorm parameters with keys {sorted(parameters)} "
            f"(unknown: {unknown}, missing: {missing}); expected moving_mean, "
            "moving_variance and optionally gamma, beta, epsilon. Rename or add "
            "the keys."
        )
    return {"gamma": 1.0, "beta": 0.0, "epsilon": 1e-3, **parameters}


def _layer_parameters(layer, offset_required: bool) -> dict:
    if not isinstance(layer, keras.layers.BatchNormalization):
        raise ValueError(
            f"Cannot fold layer {layer.name!r} of type {type(layer).__name__}; "
            "expected a keras.layers.BatchNormalization. Pass the BatchNorm layer "
            "that feeds the sign."
        )
    if not layer.built:
        raise ValueError(
            f"BatchNorm layer {layer.name!r} is not built, so it has no statistics "
            "yet; expected a built layer. Build or call the model first."
        )
    rank = layer.input_spec.ndim  # set by `build`, which also makes axes >= 0
    if list(layer.axis) != [rank - 1]:
        raise ValueError(
            f"BatchNorm layer {layer.name!r} normalizes axes {layer.axis}; expected "
            "only the last (channel) axis. Use a channels-last BatchNorm."
        )
    if offset_required and not layer.center:
        raise ValueError(
            f"BatchNorm layer {layer.name!r} has no offset (center=False); expected "
            "an offset beta to absorb the threshold. Use center=True."
        )
    return {
        "moving_mean": layer.moving_mean.numpy(),
        "moving_variance": layer.moving_variance.numpy(),
        "epsilon": layer.epsilon,
        "gamma": layer.gamma.numpy() if layer.scale else 1.0,
        "beta": layer.beta.numpy() if layer.center else 0.0,
    }


def _checked(values: Mapping) -> BatchNormParameters:
    """Per-channel float64 vectors of one shape, finite, with v + epsilon > 0."""
    epsilon = float(values["epsilon"])
    arrays = [np.asarray(values[k], np.float64) for k in _PARAMETERS[:4]]
    try:
        arrays = [np.atleast_1d(a) for a in np.broadcast_arrays(*arrays)]
    except ValueError:
        raise ValueError(
            "Received BatchNorm parameters of shapes "
            f"{[np.shape(values[k]) for k in _PARAMETERS[:4]]}; expected scalars or "
            "arrays of one shape (C,). Pass per-channel vectors of equal length."
        ) from None
    if arrays[0].ndim != 1:
        raise ValueError(
            f"Received BatchNorm parameters of shape {arrays[0].shape}; expected "
            "shape (C,). Fold a BatchNorm over one (the last) axis."
        )
    finite = all(np.isfinite(a).all() for a in arrays) and math.isfinite(epsilon)
    if not finite or (arrays[3] + epsilon <= 0).any():
        raise ValueError(
            "Received BatchNorm parameters with non-finite values or "
            "moving_variance + epsilon <= 0; expected finite values and a positive "
            "variance + epsilon. Check the layer's weights."
        )
    return BatchNormParameters(*arrays, epsilon=epsilon)


def _exact_threshold(gamma, beta, mean, variance, epsilon) -> float:
    """The float64 boundary of `BN(x) >= 0`, decided in exact arithmetic."""
    g, b, m = Fraction(gamma), Fraction(beta), Fraction(mean)
    v = Fraction(variance) + Fraction(epsilon)

    def nonnegative(x_key: int) -> bool:  # BN(x) >= 0, exactly, times sigma > 0
        a = g * (Fraction(_from_key(x_key)) - m)  # BN(x) * sigma = a + b * sigma
        if a >= 0 and b >= 0:
            return True
        if a <= 0 and b <= 0:
            return False  # at least one of them is negative
        return a * a >= b * b * v if a > 0 else b * b * v >= a * a

    increasing = gamma > 0
    # Order keys so that "True" lies on the high side of the boundary.
    if increasing:
        predicate = nonnegative
    else:

        def predicate(key):
            return nonnegative(-key)

    guess = mean - beta * math.sqrt(variance + epsilon) / gamma
    start = _key(guess if math.isfinite(guess) else math.copysign(1e308, guess))
    start = start if increasing else -start
    low, high = _bracket(predicate, max(-_MAX_KEY, min(_MAX_KEY, start)))
    if high is None:  # no finite float64 reaches BN >= 0 on this side
        return math.inf if increasing else -math.inf
    if low is None:  # every finite float64 does
        return -math.inf if increasing else math.inf
    while high - low > 1:
        middle = (low + high) // 2
        if predicate(middle):
            high = middle
        else:
            low = middle
    return _from_key(high if increasing else -high)


def _bracket(predicate, start):
    """Keys (low, high) with predicate False/True and high - low >= 1.

    None for a side means the predicate is constant up to the end of the range.
    """
    step = 1
    if predicate(start):
        high = start
        while True:
            low = max(high - step, -_MAX_KEY)
            if not predicate(low):
                return low, high
            if low == -_MAX_KEY:
                return None, low
            high, step = low, step * 2
    low = start
    while True:
        high = min(low + step, _MAX_KEY)
        if predicate(high):
            return low, high
        if high == _MAX_KEY:
            return high, None
        low, step = high, step * 2


def _key(x: float) -> int:
    """Maps float64 to integers preserving order (both zeros map to 0)."""
    bits = struct.unpack("<q", struct.pack("<d", x))[0]
    return bits if bits >= 0 else -(bits & 0x7FFFFFFFFFFFFFFF)


def _from_key(key: int) -> float:
    bits = key if key >= 0 else (-key) | (1 << 63)
    return struct.unpack("<d", struct.pack("<Q", bits))[0]
