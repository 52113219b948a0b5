r"""What an AF does to the sign: monotonicity, thresholds and viability.

- `is_monotone` / `monotone_threshold`: whether
  \\(\operatorname{sign}(\mathrm{AF}(x))\\) is one threshold
  \\(\operatorname{sign}(x - t)\\) per channel, which lets a converter fold the
  binarizer into the BatchNorm before it.
- `sign_share` / `viability_problem`: whether the binarizer's output carries
  information at all on the inputs it sees, so that a search can skip an AF
  before paying for its training.

Every check is numerical, in float64, with `evaluate_numpy`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from keras_bnn_af.af.evaluation import evaluate_numpy, parameter_values
from keras_bnn_af.af.resolve import AFSpec, resolve
from keras_bnn_af.af.tree import Node

__all__ = [
    "MIN_SIGN_SHARE",
    "is_monotone",
    "is_viable",
    "monotone_threshold",
    "sign_share",
    "viability_problem",
]

_GRID = np.unique(
    np.concatenate(
        [
            np.linspace(-8.0, 8.0, 8001),
            np.geomspace(8.0, 1e300, 600),
            -np.geomspace(8.0, 1e300, 600),
        ]
    )
)


def _channel_params(tree: Node, params) -> list[np.ndarray]:
    return [
        np.atleast_1d(v).astype(np.float64)
        for v in parameter_values(tree, params, np.asarray)
    ]


def is_monotone(af: AFSpec, params: Sequence | None = None) -> np.ndarray:
    """Whether AF is non-decreasing on the reals, per channel.

    Checked numerically in float64 on a dense grid: steps of 0.002 on [-8, 8] and
    600 log-spaced points on each side out to 1e300, allowing rounding-level
    decreases (1e-10 relative). A feature narrower than the grid step can be missed;
    a NaN anywhere counts as not monotone (so the answer errs on "no").

    # Arguments
        af: anything `resolve` accepts.
        params: per-channel values of the learnable parameters (`parameters(tree)`
            order), or None for their initial values.

    # Returns
        A bool array with one entry per channel (length 1 without parameters).
    """
    tree = resolve(af)
    values = _channel_params(tree, params)
    f = evaluate_numpy(tree, _GRID[:, None], values)
    f = np.broadcast_to(f, (len(_GRID), max([1, *(v.size for v in values)])))
    with np.errstate(invalid="ignore"):
        slack = 1e-10 * np.maximum(np.abs(f[:-1]), np.abs(f[1:])) + 1e-12
        slack = np.where(np.isfinite(slack), slack, 0.0)
        steps = f[1:] >= f[:-1] - slack
    return np.all(steps & ~np.isnan(f[1:]) & ~np.isnan(f[:-1]), axis=0)


def monotone_threshold(af: AFSpec, params: Sequence | None = None) -> np.ndarray | None:
    r"""Per-channel thresholds `t` with `AF(x) >= 0  <=>  x >= t`, for monotone AFs.

    Then `sign(AF(x)) = sign(x - t)` (with sign(0) = +1), so a converter can fold
    the binarizer into a plain threshold. `t` is the smallest float32 with
    `AF(t) >= 0` in float64 (bisection, then rounding up to float32); `-inf` when
    AF is never negative, `+inf` when it is always negative.

    # Returns
        A float32 array with one threshold per channel (length 1 without
        parameters), or None if AF is not non-decreasing (`is_monotone`) on some
        channel.
    """
    tree = resolve(af)
    values = _channel_params(tree, params)
    if not is_monotone(tree, values).all():
        return None
    channels = max([1, *(v.size for v in values)])
    values = [np.broadcast_to(v, (channels,)) for v in values]
    f = np.broadcast_to(
        evaluate_numpy(tree, _GRID[:, None], values), (len(_GRID), channels)
    )
    nonnegative = f >= 0
    first = np.argmax(nonnegative, axis=0)
    never = ~nonnegative.any(axis=0)
    always = nonnegative[0]
    inside = ~never & ~always
    low = np.where(inside, _GRID[np.maximum(first - 1, 0)], 0.0)
    high = np.where(inside, _GRID[first], 0.0)
    for _ in range(200):  # each bracket spans < 2^53 float64 steps
        middle = low + (high - low) / 2
        if not np.any((middle > low) & (middle < high)):
            break
        up = evaluate_numpy(tree, middle, values) >= 0
        high = np.where(up, middle, high)
        low = np.where(up, low, middle)
    threshold = high.astype(np.float32)
    threshold = np.where(
        threshold.astype(np.float64) < high,
        np.nextafter(threshold, np.float32(np.inf)),
        threshold,
    )
    threshold = np.where(always, -np.inf, np.where(never, np.inf, threshold))
    return threshold.astype(np.float32)


# --- viability ----------------------------------------------------------------------

#: Least share of inputs each sign of `sign(AF(x))` must get (see `sign_share`).
MIN_SIGN_SHARE = 0.01
# Standard-normal quadrature on [-5, 5]: the mass outside (6e-7) is negligible.
_NORMAL_GRID = np.linspace(-5.0, 5.0, 2001)
_NORMAL_WEIGHTS = np.exp(-0.5 * _NORMAL_GRID**2)
_NORMAL_WEIGHTS /= _NORMAL_WEIGHTS.sum()


def sign_share(af: AFSpec, params: Sequence | None = None) -> np.ndarray:
    r"""Per channel, the shares of standard-normal inputs that AF maps to each sign.

    \\[
    p_+ = P_{x \sim \mathcal N(0, 1)}\left(\mathrm{AF}(x) \geq 0\right), \qquad
    p_- = P_{x \sim \mathcal N(0, 1)}\left(\mathrm{AF}(x) < 0\right),
    \\]

    by quadrature on 2,001 points of [-5, 5]. The standard normal is what a
    binarizer sees at the start of training: in every reference model it follows
    a BatchNorm, whose output is about \\(\mathcal N(0, 1)\\) per channel with
    its initial \\(\gamma = 1, \beta = 0\\). Inputs where AF is NaN count for
    neither sign.

    # Returns
        An array of shape `(2, channels)`: row 0 is \\(p_+\\), row 1 \\(p_-\\).
    """
    tree = resolve(af)
    values = _channel_params(tree, params)
    channels = max([1, *(v.size for v in values)])
    f = np.broadcast_to(
        evaluate_numpy(tree, _NORMAL_GRID[:, None], values),
        (len(_NORMAL_GRID), channels),
    )
    positive = _NORMAL_WEIGHTS @ (f >= 0)
    negative = _NORMAL_WEIGHTS @ (f < 0)
    return np.stack([positive, negative])


def viability_problem(af: AFSpec, params: Sequence | None = None) -> str | None:
    r"""Why `sign(AF(x))` is (nearly) constant on a binarizer's inputs, or None.

    The rule: at the initial parameter values (or `params`), each sign must get
    at least `MIN_SIGN_SHARE` (1 %) of standard-normal inputs on every channel
    (`sign_share`). An AF that fails it feeds the next binary layer a constant
    (`max(x, 0)`, `exp(x)`, `-abs(x)`) or a bit that is set for fewer than 1 in
    100 inputs (`x - 3`): the network starts from a dead layer, and GAAF's own
    early kill drops such candidates after their first epoch anyway. A search
    skips them before training. Learnable parameters could in principle move a
    threshold back into range, but the straight-through gradient of a binarizer
    whose input lies outside its clip window is zero, so they rarely do.

    # Returns
        None for a viable AF, else a sentence naming the share and the sign.
    """
    positive, negative = sign_share(af, params)
    worst = int(np.argmin(np.minimum(positive, negative)))
    low = min(positive[worst], negative[worst])
    if low >= MIN_SIGN_SHARE:
        return None
    sign = "+1" if positive[worst] < negative[worst] else "-1"
    return (
        f"sign(AF(x)) is {sign} on only {low:.2%} of standard-normal inputs (what a "
        f"BatchNorm feeds a binarizer at initialization); each sign needs at least "
        f"{MIN_SIGN_SHARE:.0%}"
    )


def is_viable(af: AFSpec, params: Sequence | None = None) -> bool:
    """Whether `viability_problem(af, params)` is None."""
    return viability_problem(af, params) is None
