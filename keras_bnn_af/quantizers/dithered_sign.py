r"""DeSign: the designed dithering sign, a sign with a periodic threshold per pixel.

```python
import larq as lq
from keras_bnn_af.quantizers import DitheredSign, binarizer_factory

lq.layers.QuantConv2D(64, 3, input_quantizer="dithered_sign")  # DeSign's 2x2 kernel
lq.layers.QuantConv2D(64, 3, input_quantizer=DitheredSign("bayer4"))
make_binarizer = binarizer_factory("dithered_sign:design_2x2x4")  # one per layer
```

The threshold kernel is fixed (not learned), so the forward pass is a constant
subtraction followed by `larq.math.sign`: Larq Compute Engine converts it into two
float `Sub`s and an `LceQuantize`, and the following convolution stays an
`LceBconv2d`. (The subtraction is written as `0 - (T - x)` on purpose; see
`DitheredSign.call`.)
"""

import math
from collections.abc import Iterable
from typing import Any

import larq as lq
import numpy as np

from keras_bnn_af._keras import tf
from keras_bnn_af.quantizers.base import BinaryQuantizer, register

__all__ = ["DitheredSign", "bayer_matrix", "design_kernel", "threshold_kernel"]

#: The threshold levels of DeSign's shipped kernels (seeds.md section 4).
DESIGN_LEVELS = (0.3118, 0.631, 0.9671, 1.3352, 1.7656, 2.3419)


def bayer_matrix(size: int, *, normalize: bool = True) -> np.ndarray:
    r"""The `size` x `size` Bayer (ordered-dither) index matrix.

    Built by the usual recursion from \\(B_1 = [0]\\):
    \\[
    B_{2n} = \begin{bmatrix} 4B_n & 4B_n + 2 \\\ 4B_n + 3 & 4B_n + 1 \end{bmatrix},
    \\]
    so \\(B_n\\) is a permutation of \\(0, \dots, n^2 - 1\\). Normalised, it becomes
    thresholds centred on zero, \\((B_n + 0.5) / n^2 - 0.5 \in (-0.5, 0.5)\\), with
    mean 0: a feature of constant value \\(v \in (-0.5, 0.5)\\) then binarizes to a
    fraction of about \\(v + 0.5\\) of +1s in every period.

    # Arguments
        size: a power of two (1, 2, 4, 8, ...).
        normalize: if False, return the integer indices \\(B_n\\) (as floats).

    # Returns
        A float64 array of shape `(size, size)`.

    # Raises
        ValueError: if `size` is not a positive power of two.
    """
    if isinstance(size, bool) or not isinstance(size, int | np.integer):
        size = -1
    if size < 1 or size & (size - 1):
        raise ValueError(
            f"Received Bayer matrix size {size!r}; expected a power of two such as "
            "2, 4 or 8. Pick the nearest power of two."
        )
    matrix = np.zeros((1, 1))
    while matrix.shape[0] < size:
        matrix = np.block(
            [[4 * matrix, 4 * matrix + 2], [4 * matrix + 3, 4 * matrix + 1]]
        )
    if normalize:
        matrix = (matrix + 0.5) / size**2 - 0.5
    return matrix


def _shifting_kernel() -> np.ndarray:
    levels = DESIGN_LEVELS
    slices = [
        [[levels[1 + k], levels[1 + k]], [levels[k], levels[2 + k]]] for k in range(4)
    ]
    return np.stack(slices, axis=-1)


_KERNELS = {
    "design_2x2": np.array([[0.631, 0.631], [0.3118, 0.9671]]),
    "design_3x3": np.array(
        [[0.9671, 0.631, 0.9671], [0.631, 0.3118, 0.631], [0.9671, 0.631, 0.9671]]
    ),
    "design_2x2x4": _shifting_kernel(),
    "bayer2": bayer_matrix(2),
    "bayer4": bayer_matrix(4),
    "bayer8": bayer_matrix(8),
}
for _kernel in _KERNELS.values():
    _kernel.setflags(write=False)

#: The names `DitheredSign(kernel=...)` accepts.
KERNEL_NAMES = tuple(_KERNELS)


def threshold_kernel(kernel: str | Any) -> np.ndarray:
    r"""The m x n x F threshold kernel \\(T\\) named or given by `kernel` (unscaled).

    Named kernels:

    - `"design_2x2"`, `"design_3x3"`: DeSign's shipped 2-D kernels (F = 1).
    - `"design_2x2x4"`: DeSign3D's 2x2x4 "shifting" kernel. It is *derived* from
      the stated rule (each channel slice moves one step up the level set
      `DESIGN_LEVELS`), not read from the authors' `.mat` file: the 2x2 base uses
      level indices `[[1, 1], [0, 2]]`, so slice k uses `[[1+k, 1+k], [k, 2+k]]`
      for k = 0..3, which uses exactly the six shipped levels, and slice 0 equals
      `"design_2x2"`.
    - `"bayer2"`, `"bayer4"`, `"bayer8"`: normalised Bayer matrices, see
      `bayer_matrix`; thresholds in (-0.5, 0.5), mean 0.

    # Arguments
        kernel: one of the names above, or a finite real array of shape (m, n)
            or (m, n, F).

    # Returns
        A new float64 array of shape (m, n, F); a 2-D kernel gets F = 1.

    # Raises
        ValueError: for an unknown name or an array of the wrong shape or dtype.
    """
    if isinstance(kernel, str):
        if kernel not in _KERNELS:
            raise ValueError(
                f"Unknown threshold kernel {kernel!r}. Expected one of "
                f"{', '.join(KERNEL_NAMES)}, or an (m, n) or (m, n, F) array of "
                "finite floats. Fix the name or pass the array itself."
            )
        array = _KERNELS[kernel]
    else:
        array = _as_kernel_array(kernel)
    array = np.array(array, dtype=np.float64)
    return array[..., np.newaxis] if array.ndim == 2 else array


def _as_kernel_array(kernel: Any) -> np.ndarray:
    try:
        array = np.asarray(kernel)
    except (TypeError, ValueError):  # ragged nested lists
        array = np.asarray(kernel, dtype=object)
    if array.dtype.kind not in "iuf":
        problem = "its entries are not real numbers (or its rows are ragged)"
    elif array.ndim not in (2, 3):
        problem = f"it has {array.ndim} dimensions"
    elif not array.size:
        problem = "it is empty"
    elif not np.isfinite(array).all():
        problem = "it holds NaN or infinite values"
    else:
        return array.astype(np.float64)
    raise ValueError(
        f"Cannot use {type(kernel).__name__} of shape {array.shape} and dtype "
        f"{array.dtype} as a threshold kernel: {problem}. Expected a name "
        f"({', '.join(KERNEL_NAMES)}) or a non-empty (m, n) or (m, n, F) array "
        "of finite real numbers. Reshape it or fix the offending entries."
    )


def _check_scale(scale: Any) -> None:
    if isinstance(scale, bool) or not (
        isinstance(scale, int | float | np.number) and math.isfinite(scale)
    ):
        raise ValueError(
            f"Received scale={scale!r}; expected a finite real number that "
            "multiplies the thresholds (1.0 keeps them). Pass a float."
        )


def _tiled(
    thresholds: np.ndarray, height: int, width: int, channels: int
) -> np.ndarray:
    """`thresholds` (m, n, F) repeated periodically to (height, width, channels)."""
    m, n, f = thresholds.shape
    reps = (-(-height // m), -(-width // n), -(-channels // f))
    return np.tile(thresholds, reps)[:height, :width, :channels]


@register("dithered_sign", argument="kernel")
class DitheredSign(BinaryQuantizer):
    r"""DeSign: sign with a spatially periodic threshold kernel (ordered dithering).

    For NHWC inputs and an m x n x F threshold kernel \\(T\\) times `scale`
    \\(s\\),
    \\[
    q(x)_{b,i,j,c} = \operatorname{sign}\left(x_{b,i,j,c}
        - s\,T_{i \bmod m,\; j \bmod n,\; c \bmod F}\right),
    \qquad \operatorname{sign}(0) = +1,
    \\]
    so the kernel is tiled over height and width for any spatial size (odd,
    smaller than the kernel, or unknown until run time) and its F slices cycle
    over the channels. The kernel is a constant: nothing is learned.

    The gradient is the straight-through estimator of the *shifted* input, as in
    the authors' BinaryNet (threshold, then a sign whose gradient is clipped):
    \\[
    \frac{\partial q(x)_{b,i,j,c}}{\partial x_{b,i,j,c}} = \begin{cases}
      1 & \left|x_{b,i,j,c} - s\,T_{i \bmod m, j \bmod n, c \bmod F}\right|
          \leq \texttt{clip_value} \\\
      0 & \text{otherwise}
    \end{cases}
    \\]
    (The authors' ReCU variant instead scales \\(T\\) by the preceding
    BatchNorm's \\(\gamma_c\\) and uses a triangular pseudo-gradient; that
    variant is not implemented here.) Place it after BatchNormalization, where
    the designed levels match the activations' scale.

    # Arguments
        kernel: a name (`"design_2x2"`, `"design_3x3"`, `"design_2x2x4"`,
            `"bayer2"`, `"bayer4"`, `"bayer8"`; see `threshold_kernel`) or a
            finite (m, n) or (m, n, F) array.
        scale: factor applied to every threshold (the paper scales the designed
            entries to the BatchNorm output distribution).
        clip_value: threshold for clipping gradients, on \\(|x - sT|\\). If
            `None` gradients are not clipped.
        metrics: an array of metrics to add to the layer, as for
            `lq.quantizers.SteSign`; only `"flip_ratio"` is available.

    # Raises
        ValueError: for an unknown kernel name, a malformed kernel array, a
            non-finite `scale`, or (when called) input that is not 4-D NHWC.

    # References
        - [Designed Dithering Sign Activation for Binary Neural Networks (Monroy
          et al., IEEE JSTSP 2024)](https://arxiv.org/abs/2405.02220)
    """

    def __init__(
        self,
        kernel: str | Any = "design_2x2",
        *,
        scale: float = 1.0,
        clip_value: float | None = 1.0,
        **kwargs,
    ):
        thresholds = threshold_kernel(kernel)
        _check_scale(scale)
        self.kernel = kernel if isinstance(kernel, str) else _as_kernel_array(kernel)
        self.scale = float(scale)
        self.clip_value = None if clip_value is None else float(clip_value)
        self.thresholds = thresholds * self.scale
        super().__init__(**kwargs)

    def build(self, input_shape):
        rank = tf.TensorShape(input_shape).rank
        if rank != 4:
            raise ValueError(
                f"{type(self).__name__} received input of shape "
                f"{tf.TensorShape(input_shape)} (rank {rank}); expected 4-D NHWC "
                "feature maps (batch, height, width, channels). Apply it to "
                "convolutional activations, or reshape the input to NHWC."
            )
        super().build(input_shape)

    def preactivation(self, inputs):
        """x - T, the real value that `call` binarizes."""
        inputs = tf.convert_to_tensor(inputs)
        return inputs - self._threshold_map(inputs)

    def call(self, inputs):
        # Equal to `inputs - thresholds` bit for bit (IEEE subtraction is
        # sign-symmetric and a tie gives +0.0, so sign(0) = +1 survives, also
        # under LCE's sign-bit packing on Aarch64), but written so that no
        # `Sub(x, constant)` follows a binary convolution: LCE 0.16 folds such a
        # constant into the convolution's per-channel bias without checking its
        # shape and keeps only the thresholds of pixel (0, 0).
        shifted = 0.0 - (self._threshold_map(inputs) - inputs)
        outputs = lq.quantizers.ste_sign(shifted, clip_value=self.clip_value)
        return super().call(outputs)

    def _threshold_map(self, inputs) -> tf.Tensor:
        """The tiled thresholds, shape (height, width, channels)."""
        height, width, channels = inputs.shape[1:]
        if None not in (height, width, channels):  # a constant LCE can fold
            tiled = _tiled(self.thresholds, height, width, channels)
            return tf.constant(tiled, dtype=inputs.dtype)
        m, n, f = self.thresholds.shape
        size = tf.shape(inputs)[1:]
        reps = (size + (m - 1, n - 1, f - 1)) // (m, n, f)  # ceil division
        kernel = tf.constant(self.thresholds, dtype=inputs.dtype)
        return tf.tile(kernel, reps)[: size[0], : size[1], : size[2]]

    def get_config(self):
        kernel = self.kernel if isinstance(self.kernel, str) else self.kernel.tolist()
        return {
            **super().get_config(),
            "kernel": kernel,
            "scale": self.scale,
            "clip_value": self.clip_value,
        }


def design_kernel(
    candidates: Iterable[str | Any],
    feature_maps: Any,
    *,
    criterion: str = "match",
    scale: float = 1.0,
) -> tuple[Any, np.ndarray]:
    r"""Picks a threshold kernel by the total variation of the binarized maps.

    DeSign designs its kernel by brute force: every candidate binarizes sample
    feature maps and is scored by the total variation (TV) of the result. The
    paper's exact score was not available to us (its code also reports
    correlation, MSE and PSNR), so this function uses one of two documented
    criteria. With \\(B_T(x) = \operatorname{sign}(x - sT)\\) (sign(0) = +1) and
    the mean anisotropic TV per pixel of an H x W map,
    \\[
    \mathrm{TV}(y) = \frac{1}{HW}\Big(\sum_{i,j} |y_{i+1,j} - y_{i,j}|
        + \sum_{i,j} |y_{i,j+1} - y_{i,j}|\Big),
    \\]
    averaged over the batch and channels, a candidate scores

    - `"match"` (default): \\(-|\mathrm{TV}(B_T(x)) - \mathrm{TV}(\hat x)|\\),
      where \\(\hat x = x / \max|x|\\) per map is the real-valued map rescaled
      to [-1, 1]: the binarized maps should vary as much as the real ones, not
      more (noise) or less (lost detail);
    - `"max"`: \\(\mathrm{TV}(B_T(x))\\), the most structure kept.

    Higher scores are better; the first candidate with the highest score wins,
    so the result is deterministic. For the paper's brute force over 2x2
    kernels, pass e.g.
    `[np.reshape(c, (2, 2)) for c in itertools.product(levels, repeat=4)]`.

    # Arguments
        candidates: kernel names or (m, n) / (m, n, F) arrays, see
            `threshold_kernel`.
        feature_maps: real NHWC array (batch, height, width, channels), e.g.
            BatchNorm outputs collected from a trained model.
        criterion: `"match"` or `"max"`.
        scale: factor applied to every candidate's thresholds, as in
            `DitheredSign(scale=...)`.

    # Returns
        `(kernel, scores)`: the chosen candidate as given (a name stays a name,
        ready for `DitheredSign(kernel=...)`) and a float64 array with one
        score per candidate, in order.

    # Raises
        ValueError: for no candidates, a bad candidate, an unknown criterion,
            a non-finite `scale`, or feature maps that are not a finite 4-D
            array.
    """
    if criterion not in ("match", "max"):
        raise ValueError(
            f"Received criterion={criterion!r}; expected 'match' (binarized TV "
            "closest to the real maps' TV) or 'max' (largest binarized TV)."
        )
    _check_scale(scale)
    if isinstance(candidates, str):
        candidates = [candidates]
    candidates = list(candidates)
    if not candidates:
        raise ValueError(
            "Received no candidate kernels; expected at least one name or array, "
            f"e.g. {list(KERNEL_NAMES)}."
        )
    maps = np.asarray(feature_maps, dtype=np.float64)
    if maps.ndim != 4 or not maps.size or not np.isfinite(maps).all():
        raise ValueError(
            f"Received feature maps of shape {maps.shape}; expected a non-empty, "
            "finite NHWC array (batch, height, width, channels). Add the missing "
            "axes, e.g. maps[np.newaxis, ..., np.newaxis] for one gray image."
        )
    _, height, width, channels = maps.shape
    peak = np.abs(maps).max(axis=(1, 2), keepdims=True)
    reference = _mean_tv(maps / np.where(peak > 0, peak, 1.0))
    tvs = np.empty(len(candidates))
    for index, candidate in enumerate(candidates):
        thresholds = _tiled(
            threshold_kernel(candidate) * scale, height, width, channels
        )
        tvs[index] = _mean_tv(np.where(maps >= thresholds, 1.0, -1.0))
    scores = tvs if criterion == "max" else -np.abs(tvs - reference)
    return candidates[int(np.argmax(scores))], scores


def _mean_tv(maps: np.ndarray) -> float:
    """Mean anisotropic total variation per pixel of NHWC maps."""
    vertical = np.abs(np.diff(maps, axis=1)).sum(axis=(1, 2))
    horizontal = np.abs(np.diff(maps, axis=2)).sum(axis=(1, 2))
    return float(np.mean((vertical + horizontal) / (maps.shape[1] * maps.shape[2])))
