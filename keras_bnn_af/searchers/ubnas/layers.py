"""The Keras layers of the candidate operations (`space.OPS`).

`make_op(name, channels, stride, binarizer)` returns the op's layers as a flat
list (the derived net has no nested models): binarizer -> binary conv
(`models.binary_conv2d`) -> BatchNorm for the convs, pooling -> BatchNorm,
identity, or zeros. 1-D inputs (MNIST-1D, `(length, channels)`) run as
`(length, 1, channels)` images: `Geometry(one_d=True)` turns every `k x k`
into `k x 1`.
"""

from __future__ import annotations

from dataclasses import dataclass

import larq as lq

from keras_bnn_af import models
from keras_bnn_af._keras import keras, tf
from keras_bnn_af.searchers.ubnas.space import OPS

__all__ = ["Geometry", "Subsample", "Zero", "apply", "make_op"]


@dataclass(frozen=True)
class Geometry:
    """2-D kernels and strides, or `k x 1` ones for 1-D inputs."""

    one_d: bool = False

    def kernel(self, size: int) -> tuple[int, int]:
        return (size, 1) if self.one_d else (size, size)

    def stride(self, size: int) -> tuple[int, int]:
        return (size, 1) if self.one_d else (size, size)


def make_op(
    name: str,
    channels: int,
    stride: int,
    binarizer,
    geometry: Geometry = Geometry(),
    *,
    affine: bool = True,
    label: str | None = None,
) -> list[keras.layers.Layer]:
    """The Keras layers of operation `name` (`OPS`) on `channels` channels, to
    apply in order (a flat list, so the derived net has no nested models).

    # Arguments
        binarizer: a zero-argument factory of input quantizers (one per conv).
        affine: whether BatchNorms learn scale and offset; DARTS's supernet
            uses none (`False`), the derived net does.
        label: prefix of the layers' names.
    """
    spec = OPS[name]

    def named(suffix):
        return {"name": f"{label}_{suffix}"} if label else {}

    if spec.kind == "zero":
        return [Zero(geometry.stride(stride), **named("zero"))]
    if spec.kind == "skip" and stride == 1:
        return [keras.layers.Activation("linear", **named("skip"))]
    subsample = spec.dilation > 1 and stride > 1
    if spec.kind == "pool":
        pool = {"max": keras.layers.MaxPool2D, "avg": keras.layers.AveragePooling2D}
        layers = [
            pool[spec.pool](
                geometry.kernel(spec.kernel),
                geometry.stride(stride),
                padding="same",
                **named(spec.pool + "_pool"),
            )
        ]
    else:
        layers = [
            models.binary_conv2d(
                channels,
                geometry.kernel(spec.kernel),
                binarizer(),
                strides=geometry.stride(1 if subsample else stride),
                dilation_rate=geometry.kernel(spec.dilation),
                groups=spec.groups,
                **named("bconv"),
            )
        ]
    layers.append(
        keras.layers.BatchNormalization(
            momentum=0.9, epsilon=1e-5, center=affine, scale=affine, **named("bn")
        )
    )
    if subsample:
        layers.append(Subsample(geometry.stride(stride), **named("subsample")))
    return layers


def apply(layers, x, training=None):
    """`x` through `layers` in order."""
    for layer in layers:
        x = layer(x, training=training)
    return x


@lq.utils.register_keras_custom_object
class Zero(keras.layers.Layer):
    """Zeros shaped like the op's output: "no edge" in the supernet."""

    def __init__(self, strides=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.strides = tuple(strides)

    def call(self, inputs):
        return tf.zeros_like(inputs[:, :: self.strides[0], :: self.strides[1], :])

    def get_config(self):
        return {**super().get_config(), "strides": self.strides}


@lq.utils.register_keras_custom_object
class Subsample(keras.layers.Layer):
    """Every `strides`-th row and column: a stride-2 dilated conv's output."""

    def __init__(self, strides=(2, 2), **kwargs):
        super().__init__(**kwargs)
        self.strides = tuple(strides)

    def call(self, inputs):
        return inputs[:, :: self.strides[0], :: self.strides[1], :]

    def get_config(self):
        return {**super().get_config(), "strides": self.strides}
