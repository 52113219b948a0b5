r"""GAAF: a complementary activation function before `sign`, as a Larq quantizer.

```python
import larq as lq
from keras_bnn_af.quantizers.gaaf import GAAF

lq.layers.QuantConv2D(64, 3, pad_values=1.0, input_quantizer=GAAF("sin_x"))
lq.layers.QuantConv2D(64, 3, pad_values=1.0, input_quantizer="gaaf:x_plus_sin_x")
```

The AF is anything `keras_bnn_af.quantizers.af.resolve` accepts: a catalog name,
a formula such as `"x + sin(scale(x))"`, or a GAAF genome such as `[6, 0, 0]`.
"""

import math

import larq as lq
import numpy as np

from keras_bnn_af import af as af_language
from keras_bnn_af._keras import keras, tf
from keras_bnn_af.af.tf_ops import evaluate_tf
from keras_bnn_af.quantizers.base import BinaryQuantizer, register

__all__ = ["GAAF"]


@register("gaaf", argument="af")
class GAAF(BinaryQuantizer):
    r"""Binarizes `AF(x)`: a (searched) activation function applied before `sign`.

    \\[
    q(x) = \operatorname{sign}\big(\operatorname{Htanh}_c(\mathrm{AF}(x))\big)
         = \begin{cases} -1 & \mathrm{AF}(x) < 0 \\\ \hphantom{-}1 & \mathrm{AF}(x)
           \geq 0 \end{cases}
    \\]

    computed with `larq.math.sign`, so Larq Compute Engine turns it into an
    `LceQuantize` and the following binary convolution into an `LceBconv2d`; the
    AF itself runs as float ops. The gradient is the straight-through estimator
    through the hardtanh `Htanh_c(y) = clip(y, -c, c)`:

    \\[
    \frac{\partial q}{\partial x} = 1_{\left|\mathrm{AF}(x)\right| \leq c}\,
        \mathrm{AF}'(x),
    \qquad
    \frac{\partial q}{\partial \theta} = 1_{\left|\mathrm{AF}(x)\right| \leq c}\,
        \frac{\partial \mathrm{AF}(x)}{\partial \theta}
    \\]

    for every learnable per-channel parameter \\(\theta\\) of the AF (`scale`,
    `shift`, `param`, `blend`: one weight of shape `(C,)` per occurrence, `C` the
    last input axis). With `AF(x) = x` this is `SteSign(clip_value=c)`.

    !!! example
        ```python
        GAAF("sin_x")                   # catalog name
        GAAF("x + sin(scale(x))")       # formula with a learnable frequency
        GAAF([0, 7, 2])                 # GAAF genome: x * cos(x)
        ```

    # Arguments
        af: the activation function: a catalog name (`af.catalog()`), a formula, a
            slug such as `"x_plus_sin_x"`, or a GAAF genome (3 or 6 integer genes).
            Defaults to `"x"`. Stored (and serialized) as its canonical formula.
        clip: the hardtanh bound `c` of the straight-through estimator. GAAF uses
            1.3.
        learnable: whether the AF's parameters train. If False they stay at their
            initial values (non-trainable weights).
        metrics: as for Larq's quantizers (`["flip_ratio"]`).

    # Raises
        ValueError: for an unknown or malformed `af`, or a `clip` that is not a
            positive number.

    # References
        - [GAAF: Searching Activation Functions for Binary Neural Networks through
            Genetic Algorithm](https://arxiv.org/abs/2206.03291)
    """

    def __init__(self, af="x", *, clip=1.3, learnable=True, **kwargs):
        tree = af_language.resolve(af)
        if (
            isinstance(clip, bool)
            or not isinstance(clip, int | float)
            or not (math.isfinite(clip) and clip > 0)
        ):
            raise ValueError(
                f"GAAF got clip={clip!r}; expected a finite number > 0, the bound of "
                "the straight-through window |AF(x)| <= clip. Pass e.g. clip=1.3."
            )
        if not isinstance(learnable, bool):
            raise ValueError(
                f"GAAF got learnable={learnable!r}; expected True or False. "
                "Pass a bool."
            )
        super().__init__(**kwargs)
        self.tree = tree
        self.af = af_language.to_formula(tree)
        self.clip = float(clip)
        self.learnable = learnable
        self.af_weights = []

    def build(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        slots = af_language.parameters(self.tree)
        channels = input_shape[-1] if input_shape.rank else None
        if slots and channels is None:
            raise ValueError(
                f"GAAF({self.af!r}) has per-channel parameters but got inputs of "
                f"shape {input_shape} without a known last axis. Expected inputs "
                "with a known channel count, e.g. (batch, height, width, C)."
            )
        self.af_weights = [
            self.add_weight(
                name=f"{slot.kind}_{index}",
                shape=(channels,),
                initializer=keras.initializers.Constant(slot.init),
                trainable=self.learnable,
            )
            for index, slot in enumerate(slots)
        ]
        super().build(input_shape)

    def preactivation(self, inputs):
        """AF(inputs), the real value that `call` binarizes."""
        inputs = tf.convert_to_tensor(inputs)
        return evaluate_tf(self.tree, inputs, self._parameters())

    def call(self, inputs):
        outputs = lq.quantizers.ste_sign(self.preactivation(inputs), self.clip)
        return super().call(outputs)

    def is_monotone(self) -> bool:
        """Whether AF is non-decreasing on every channel (see `af.is_monotone`)."""
        return bool(af_language.is_monotone(self.tree, self._parameter_values()).all())

    def monotone_threshold(self) -> np.ndarray | None:
        """Per-channel `t` with `q(x) = sign(x - t)`, or None if AF is not monotone.

        Uses the current parameter values; see `af.monotone_threshold`. The result
        has one float32 entry per channel once the quantizer is built.
        """
        thresholds = af_language.monotone_threshold(self.tree, self._parameter_values())
        channels = self._channels()
        if thresholds is None or channels is None:
            return thresholds
        return np.broadcast_to(thresholds, (channels,)).copy()

    def _channels(self) -> int | None:
        if not self.built or self._build_input_shape is None:
            return None
        shape = tf.TensorShape(self._build_input_shape)
        return shape[-1] if shape.rank else None

    def _parameters(self):
        return self.af_weights if self.af_weights else None

    def _parameter_values(self):
        if not af_language.parameters(self.tree):
            return None
        if not self.built:
            raise ValueError(
                f"GAAF({self.af!r}) is not built yet, so its per-channel parameters "
                "do not exist. Expected a built quantizer: call it on an input or "
                "build its model first."
            )
        return [keras.backend.get_value(weight) for weight in self.af_weights]

    def get_config(self):
        return {
            **super().get_config(),
            "af": self.af,
            "clip": self.clip,
            "learnable": self.learnable,
        }
