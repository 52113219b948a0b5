r"""ReActNet's RSign: a sign with a learnable threshold per channel.

```python
import larq as lq

lq.layers.QuantConv2D(64, 3, input_quantizer="rsign", pad_values=1.0)
```

The forward pass is `larq.math.sign(x - alpha)`. After a binary convolution
and its BatchNorm, Larq Compute Engine folds the constant `- alpha` into the
convolution's output threshold, so the network stays fully binary.
"""

import larq as lq
import numpy as np

from keras_bnn_af._keras import keras, tf
from keras_bnn_af.quantizers.base import BinaryQuantizer, register

__all__ = ["RSign"]


@register("rsign")
class RSign(BinaryQuantizer):
    r"""ReActNet's sign with a learnable per-channel threshold \\(\alpha_c\\).

    \\[
    q(x) = \operatorname{sign}(x - \alpha_c) = \begin{cases}
      -1 & x < \alpha_c \\\
      +1 & x \geq \alpha_c
    \end{cases}
    \\]

    with the ApproxSign (Bi-Real Net) pseudo-gradient of \\(u = x - \alpha_c\\),
    which by the chain rule gives both gradients:

    \\[
    \frac{\partial L}{\partial x} = \frac{\partial L}{\partial q}
      \max\left(0,\, 2 - 2|x - \alpha_c|\right), \qquad
    \frac{\partial L}{\partial \alpha_c} = -\sum_{\text{all axes but } c}
      \frac{\partial L}{\partial q} \max\left(0,\, 2 - 2|x - \alpha_c|\right).
    \\]

    \\(\alpha\\) has shape `(C,)` for the last (channel) axis, so it suits
    channels-last inputs, and is created on the first input the quantizer sees;
    it is a trainable weight of the layer that owns the quantizer and is saved
    with it. ReActNet's paper binarizes \\(x = \alpha_c\\) to -1; here it gives
    +1 (`larq.math.sign`), which is what Larq Compute Engine computes.

    # Arguments
        alpha_initializer: initializer of \\(\alpha\\) (default zeros, i.e. the
            plain ApproxSign at the start of training).
        metrics: as for Larq's quantizers, e.g. `["flip_ratio"]` (kernels only).

    # Raises
        ValueError: if the input's last axis is unknown when the quantizer is
            built.

    # References
        - [ReActNet: Towards Precise Binary Neural Network with Generalized
          Activation Functions](https://arxiv.org/abs/2003.03488)
        - [Bi-Real Net](https://arxiv.org/abs/1808.00278) (ApproxSign)
    """

    def __init__(self, alpha_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = keras.initializers.get(alpha_initializer)

    def build(self, input_shape):
        shape = tf.TensorShape(input_shape)
        channels = shape[-1] if shape.rank else None
        if channels is None:
            raise ValueError(
                f"RSign {self.name!r} received input shape {input_shape}; expected "
                "a known last (channel) axis, which sets the number of thresholds. "
                "Give the layer's input a static channel dimension."
            )
        self.alpha = self.add_weight(
            name="alpha",
            shape=(channels,),
            initializer=self.alpha_initializer,
            trainable=True,
        )
        super().build(input_shape)

    def preactivation(self, inputs):
        """x - alpha, the real value that `call` binarizes."""
        inputs = tf.convert_to_tensor(inputs)
        return inputs - tf.cast(self.alpha, inputs.dtype)

    def call(self, inputs):
        return super().call(lq.quantizers.approx_sign(self.preactivation(inputs)))

    def monotone_threshold(self) -> np.ndarray | None:
        """alpha, the per-channel `t` with `q(x) = sign(x - t)` (None if unbuilt)."""
        if not self.built:
            return None
        return np.asarray(keras.backend.get_value(self.alpha), np.float32)

    def get_config(self):
        return {
            **super().get_config(),
            "alpha_initializer": keras.initializers.serialize(self.alpha_initializer),
        }
