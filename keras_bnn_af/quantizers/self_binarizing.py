r"""Self-Binarizing Networks: a tanh that is sharpened into a sign during training.

```python
import larq as lq
from keras_bnn_af.callbacks import SharpeningSchedule

layer = lq.layers.QuantConv2D(
    64, 3, input_quantizer="self_binarizing", kernel_quantizer="self_binarizing",
    kernel_constraint="weight_clip",
)
model.fit(..., callbacks=[SharpeningSchedule("exponential", start=1, end=100,
                                             duration=20)])
```

Lahoud et al. train weights and activations through one smooth function,
\\(\tanh(v x)\\), and sharpen it by raising \\(v\\) until it equals the sign. Here
the training path is \\(\tanh(v x)\\) with its true gradient, and the inference
and export path is `larq.math.sign(x)`, the \\(v \to \infty\\) limit, which Larq
Compute Engine binarizes. `SharpeningSchedule` raises \\(v\\) during training.
"""

import math
from numbers import Real

import larq as lq

from keras_bnn_af._keras import keras, tf
from keras_bnn_af.quantizers.base import BinaryQuantizer, register

__all__ = ["SelfBinarizing"]


@register("self_binarizing")
class SelfBinarizing(BinaryQuantizer):
    r"""A scaled tanh in training and a sign at inference (Self-Binarizing Networks).

    \\[
    q(x) = \begin{cases}
      \tanh(v x) & \text{training} \\\
      \operatorname{sign}(x) & \text{inference and export}
    \end{cases}
    \qquad
    \frac{\partial q}{\partial x} = v \left(1 - \tanh^2(v x)\right)
    \text{ in training,}
    \\]

    with \\(\operatorname{sign}(0) = +1\\) (`larq.math.sign`), so the exported
    model is binary (`precision = 1`) and \\(\tanh(v x) \to \operatorname{sign}(x)\\)
    pointwise for \\(x \neq 0\\) as the sharpness \\(v \to \infty\\).

    The sharpness \\(v\\) is a non-trainable scalar weight (`self.sharpness`),
    saved with the model; `keras_bnn_af.callbacks.SharpeningSchedule` raises it
    while training. `get_config()` holds its current value, so a clone or a
    reloaded model continues from where it was.

    **Training or inference.** The quantizer takes Keras's `training` flag. A
    Larq layer calls its input quantizer, and reads its quantized kernel, inside
    its own `call`, so the flag of the enclosing call reaches both
    (`model.fit` → training; `predict`, `evaluate`, a plain `model(x)` and the
    LCE/SavedModel export → inference). Validation during `fit` therefore
    measures the binary network that will be exported.

    **As a kernel quantizer.** Latent weights \\(w\\) are used as \\(\tanh(v w)\\)
    in training and as \\(\operatorname{sign}(w)\\) at export. The gradient
    \\(v(1 - \tanh^2(v w))\\) never cuts off, but it vanishes once
    \\(|v w| \gtrsim 3\\), so weights that drift far from 0 stop learning as
    \\(v\\) grows. Pair it with `kernel_constraint="weight_clip"` (Larq warns
    about a binary kernel quantizer without a constraint): with clip value
    \\(c\\) the training kernel lies within \\(\pm\tanh(v c)\\), so choose
    \\(c \geq 1\\) and let the schedule make \\(v c\\) large before export.

    # Arguments
        sharpness: initial \\(v > 0\\).
        metrics: as for Larq's quantizers, e.g. `["flip_ratio"]` (kernels only).

    # Raises
        ValueError: if `sharpness` is not a finite positive number.

    # References
        - [Self-Binarizing Networks](https://arxiv.org/abs/1902.00730)
    """

    def __init__(self, sharpness: float = 1.0, **kwargs):
        _check_sharpness(sharpness)
        super().__init__(**kwargs)
        # Created here rather than in `build`, so a schedule can set it before the
        # quantizer first runs. The name scope keeps the names of two quantizers
        # of one layer (input and kernel) apart, as `.h5` files need.
        with tf.name_scope(self.name):
            self.sharpness = self.add_weight(
                name="sharpness",
                shape=(),
                dtype="float32",
                initializer=keras.initializers.Constant(float(sharpness)),
                trainable=False,
            )

    def preactivation(self, inputs):
        """tanh(v x), the training-time function whose limit is the sign."""
        inputs = tf.convert_to_tensor(inputs)
        return tf.tanh(tf.cast(self.sharpness, inputs.dtype) * inputs)

    def call(self, inputs, training=None):
        inputs = tf.convert_to_tensor(inputs)

        def smooth():
            return self.preactivation(inputs)

        def binary():
            return lq.math.sign(inputs)

        return super().call(_training_cond(training, smooth, binary))

    def get_config(self):
        return {**super().get_config(), "sharpness": float(self.sharpness.numpy())}


def _check_sharpness(value) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(
            f"Received sharpness={value!r}; expected a finite number v > 0 (the "
            "slope of tanh(v * x) at 0). Pass e.g. `SelfBinarizing(sharpness=1.0)`."
        )


def _training_cond(training, true_fn, false_fn):
    """`true_fn()` in training, else `false_fn()`; `None` means inference."""
    if training is None:
        return false_fn()
    static = tf.get_static_value(training) if tf.is_tensor(training) else training
    if static is not None:
        return true_fn() if bool(static) else false_fn()
    return tf.cond(tf.cast(training, tf.bool), true_fn, false_fn)
