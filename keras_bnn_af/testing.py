"""Helpers shared by the test suite and by users testing their own binarizers.

```python
model = binary_block_net("rsign")
check = lce_check(model, sample_inputs(model))
assert check.op_counts["LceBconv2d"] == check.binary_convs
assert check.max_abs_diff <= 1e-3
```
"""

from collections import Counter
from dataclasses import dataclass

import numpy as np

from keras_bnn_af._keras import keras
from keras_bnn_af.models import binary_conv2d
from keras_bnn_af.quantizers import BinarizerSpec, binarizer_factory


def real_values_with_zeros(shape=(4, 25), *, low=-3.0, high=3.0, seed=0) -> np.ndarray:
    """Uniform values in [low, high) with exact zeros and +-1 mixed in."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(low, high, size=shape).astype(np.float32)
    flat = values.reshape(-1)
    flat[:: max(1, flat.size // 7)] = 0.0
    flat[1 :: max(1, flat.size // 5)] = 1.0
    flat[2 :: max(1, flat.size // 5)] = -1.0
    return values


def binary_block_net(
    binarizer: BinarizerSpec,
    *,
    input_shape=(12, 12, 8),
    filters=(32, 32, 32),
    num_classes=10,
    seed=0,
) -> keras.Model:
    """Consecutive standard binary blocks with trained-looking BatchNorm statistics.

    `float conv -> BN -> [binarizer -> binary 3x3 conv (pad 1) -> BN] x len(filters)
    -> global average pool -> dense logits`. The BatchNorm moving means,
    variances, scales and offsets are drawn at random (seeded), so LCE must fold
    non-trivial per-channel affine maps into its binary convs.
    """
    make_binarizer = binarizer_factory(binarizer)
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(filters[0], 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    for width in filters:
        x = binary_conv2d(width, 3, make_binarizer())(x)
        x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes)(x)
    model = keras.Model(inputs, outputs)
    randomize_batch_norm(model, seed=seed)
    return model


def randomize_batch_norm(model: keras.Model, *, seed=0) -> None:
    """Gives every BatchNorm layer random, plausible trained statistics."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            weights = []
            for weight in layer.weights:
                shape = weight.shape
                name = weight.name
                if "gamma" in name:
                    weights.append(
                        rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)
                    )
                elif "beta" in name:
                    weights.append(rng.normal(0.0, 0.5, shape))
                elif "moving_mean" in name:
                    weights.append(rng.normal(0.0, 3.0, shape))
                else:  # moving_variance
                    weights.append(rng.uniform(2.0, 30.0, shape))
            layer.set_weights([w.astype(np.float32) for w in weights])


def set_quantizer_weights(model: keras.Model, low, high, *, seed=0) -> None:
    """Draws every input-quantizer weight (an RSign threshold, a GAAF scale) of
    `model`'s top-level layers from U(low, high), seeded."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        quantizer = getattr(layer, "input_quantizer", None)
        for weight in getattr(quantizer, "weights", []):
            weight.assign(rng.uniform(low, high, weight.shape))


def sample_inputs(model: keras.Model, count=8, *, seed=1) -> np.ndarray:
    """Seeded standard-normal inputs shaped for `model`."""
    shape = (count, *model.input_shape[1:])
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@dataclass(frozen=True)
class LceCheck:
    """What LCE made of a model, and how far its outputs are from Keras's."""

    op_counts: Counter
    binary_convs: int
    max_abs_diff: float
    keras_outputs: np.ndarray
    lce_outputs: np.ndarray


def lce_check(model: keras.Model, inputs: np.ndarray) -> LceCheck:
    """Converts `model` with LCE, runs it on `inputs` and compares with Keras."""
    import larq_compute_engine as lce

    from keras_bnn_af.converters import op_counts
    from keras_bnn_af.models import binary_convolutions

    flatbuffer = lce.convert_keras_model(model)
    interpreter = lce.testing.Interpreter(flatbuffer, num_threads=1)
    lce_outputs = np.asarray(interpreter.predict(inputs))
    keras_outputs = model.predict(inputs, verbose=0)
    return LceCheck(
        op_counts=op_counts(flatbuffer),
        binary_convs=len(binary_convolutions(model)),
        max_abs_diff=float(np.abs(keras_outputs - lce_outputs).max()),
        keras_outputs=keras_outputs,
        lce_outputs=lce_outputs,
    )
