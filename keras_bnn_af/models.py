"""Reference binary networks, laid out so Larq Compute Engine fuses every binary conv.

```python
model = keras_bnn_af.models.build("resnet_e18", binarizer="approx_sign")
```

Every binary convolution is a `QuantConv2D` with an input binarizer made fresh for
that layer from the binarizer spec, `ste_sign` latent-weight binarization with a
weight clip, no bias, `pad_values=1.0` where it pads, and BatchNorm right after it.
LCE then turns it into one `LceBconv2d` that absorbs the BatchNorm. Binary
classifier layers are 1x1 `QuantConv2D`s rather than `QuantDense`, which LCE would
leave in float. The first layer and real-valued heads stay full precision.

Models: `binarynet` (default, MNIST), `vgg_small` and `resnet_e18` (CIFAR-style,
the GAAF search proxy), `conv1d` (MNIST-1D), and larq-zoo's `quicknet_small`,
`quicknet`, `quicknet_large` built without pretrained weights.
"""

from collections.abc import Callable

import larq as lq

from keras_bnn_af._keras import keras
from keras_bnn_af.quantizers import BinarizerSpec, binarizer_factory

DEFAULT_MODEL = "binarynet"
DEFAULT_BINARIZER = "ste_sign"
#: The arguments of Larq layers that hold a quantizer.
QUANTIZER_KEYS = (
    "input_quantizer",
    "kernel_quantizer",
    "depthwise_quantizer",
    "pointwise_quantizer",
)


def build(
    name: str = DEFAULT_MODEL,
    *,
    binarizer: BinarizerSpec | None = None,
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
) -> keras.Model:
    """Builds a reference model by name.

    # Arguments
        name: one of `available_models()`.
        binarizer: spec of the activation binarizer used in every binary conv
            (see `keras_bnn_af.quantizers.binarizer_factory`). Defaults to the
            model's own (`"ste_sign"`; larq-zoo's `SteSign(1.25)` for QuickNets).
        input_shape: shape of one example. Defaults to the model's dataset.
        num_classes: number of outputs. Defaults to the model's dataset.

    # Returns
        An uncompiled `keras.Model` with a softmax output.
    """
    check_name(name)
    builder, default_shape, default_classes = _BUILDERS[name]
    return builder(
        binarizer,
        input_shape=tuple(input_shape or default_shape),
        num_classes=num_classes or default_classes,
    )


def available_models() -> list[str]:
    """The names `build` accepts."""
    return sorted(_BUILDERS)


def check_name(name: str) -> None:
    """Raises a ValueError naming the valid models if `build` cannot take `name`."""
    if name not in _BUILDERS:
        raise ValueError(
            f"Unknown model {name!r}. Expected one of "
            f"{', '.join(map(repr, available_models()))}. Pick one of those, e.g. "
            f"{DEFAULT_MODEL!r} for MNIST."
        )


def default_input_shape(name: str) -> tuple[int, ...]:
    """The input shape `build(name)` uses when none is given."""
    return _BUILDERS[name][1]


def binary_convolutions(model: keras.Model) -> list[keras.layers.Layer]:
    """The `QuantConv2D` layers of `model` that binarize their input."""
    return [
        layer
        for layer in all_layers(model)
        if isinstance(layer, lq.layers.QuantConv2D)
        and layer.input_quantizer is not None
    ]


def all_layers(model: keras.Model):
    """Every layer of `model`, with nested models expanded into their layers."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)
        else:
            yield layer


def has_binary_input(layer) -> bool:
    """Whether `layer` binarizes its input (a 1-bit input quantizer)."""
    quantizer = getattr(layer, "input_quantizer", None)
    return quantizer is not None and getattr(quantizer, "precision", 1) == 1


def quantizer_weights(layer, keys=QUANTIZER_KEYS) -> list:
    """The weights of `layer`'s quantizers under `keys` (an RSign threshold, a GAAF
    scale): Keras counts them among the layer's weights."""
    weights = []
    for key in keys:
        quantizer = getattr(layer, key, None)
        if isinstance(quantizer, keras.layers.Layer):
            weights += quantizer.weights
    return weights


# --- building blocks ---------------------------------------------------------------


def binary_conv2d(
    filters: int,
    kernel_size,
    input_quantizer,
    *,
    strides=1,
    dilation_rate=1,
    groups=1,
    name=None,
) -> lq.layers.QuantConv2D:
    """A `QuantConv2D` laid out so LCE makes it one `LceBconv2d`.

    `input_quantizer` binarizes the input (give every layer its own instance),
    `ste_sign` binarizes the clipped latent weights, there is no bias (the
    BatchNorm that should follow provides it) and "same" padding pads with +1.
    LCE fuses dilated convs, and grouped ones only with a multiple of 32 input
    channels per group (otherwise its converter refuses to fuse them).
    """
    return lq.layers.QuantConv2D(
        filters,
        kernel_size,
        strides=strides,
        dilation_rate=dilation_rate,
        groups=groups,
        padding="same",
        pad_values=1.0,
        input_quantizer=input_quantizer,
        kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
        use_bias=False,
        name=name,
    )


def _binary_conv(
    x, filters: int, kernel_size, binarizer: Callable, *, strides=1, name=None
):
    """Binarizer -> binary conv -> BatchNorm, the pattern LCE fuses into one op."""
    conv = binary_conv2d(filters, kernel_size, binarizer(), strides=strides, name=name)
    return _batch_norm(conv(x), name=f"{name}_bn" if name else None)


def _batch_norm(x, name=None):
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)(x)


def _float_conv(x, filters: int, kernel_size, name=None):
    x = keras.layers.Conv2D(
        filters, kernel_size, padding="same", use_bias=False, name=name
    )(x)
    return _batch_norm(x, name=f"{name}_bn" if name else None)


def _binary_classifier(x, units: tuple[int, ...], binarizer: Callable):
    """Flatten -> 1x1 binary convs (LCE keeps `QuantDense` in float)."""
    x = keras.layers.Reshape((1, 1, -1), name="flatten_to_1x1")(x)
    for index, width in enumerate(units):
        x = _binary_conv(x, width, 1, binarizer, name=f"classifier_{index}")
    x = keras.layers.Flatten(name="logits")(x)
    return keras.layers.Activation("softmax", name="softmax")(x)


def _resolve(binarizer: BinarizerSpec | None) -> Callable:
    return binarizer_factory(DEFAULT_BINARIZER if binarizer is None else binarizer)


# --- reference models ----------------------------------------------------------------


def binarynet(
    binarizer=None, *, input_shape=(28, 28, 1), num_classes=10
) -> keras.Model:
    """BinaryNet-style MNIST CNN: three convs and a binary 1x1-conv classifier.

    The first conv sees real-valued pixels (binary weights, float conv in LCE);
    every later layer binarizes both weights and activations.
    """
    make_binarizer = _resolve(binarizer)
    inputs = keras.Input(input_shape)
    x = lq.layers.QuantConv2D(
        32,
        3,
        padding="same",
        kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
        use_bias=False,
        name="conv_0",
    )(inputs)
    x = _batch_norm(x, name="conv_0_bn")
    x = keras.layers.MaxPool2D(2, name="pool_0")(x)
    x = _binary_conv(x, 64, 3, make_binarizer, name="conv_1")
    x = keras.layers.MaxPool2D(2, name="pool_1")(x)
    x = _binary_conv(x, 64, 3, make_binarizer, name="conv_2")
    outputs = _binary_classifier(x, (128, num_classes), make_binarizer)
    return keras.Model(inputs, outputs, name="binarynet")


def vgg_small(
    binarizer=None, *, input_shape=(32, 32, 3), num_classes=10
) -> keras.Model:
    """VGG-Small (LQ-Nets, ReActNet's CIFAR baseline): 128-128-256-256-512-512.

    Full-precision first conv and classifier; the five other convs are binary.
    """
    make_binarizer = _resolve(binarizer)
    inputs = keras.Input(input_shape)
    x = _float_conv(inputs, 128, 3, name="conv_0")
    for index, (filters, pool) in enumerate(
        [(128, True), (256, False), (256, True), (512, False), (512, True)], start=1
    ):
        x = _binary_conv(x, filters, 3, make_binarizer, name=f"conv_{index}")
        if pool:
            x = keras.layers.MaxPool2D(2, name=f"pool_{index}")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(
        x
    )
    return keras.Model(inputs, outputs, name="vgg_small")


def resnet_e18(
    binarizer=None, *, input_shape=(32, 32, 3), num_classes=10
) -> keras.Model:
    """The CIFAR ResNet-E18 that GAAF searched on.

    Stem: BatchNorm without affine terms, full-precision 3x3 conv (64), BatchNorm.
    Then 4 stages (64, 128, 256, 512 channels) of 2 basic blocks; a block is
    `x + BN(bconv(q(BN(bconv(q(x))))))`, and a stage's first block halves the
    resolution with a binary 1x1/2 conv + BN shortcut. Head: ReLU, global average
    pooling, full-precision dense.
    """
    make_binarizer = _resolve(binarizer)
    inputs = keras.Input(input_shape)
    x = keras.layers.BatchNormalization(center=False, scale=False, name="stem_norm")(
        inputs
    )
    x = _float_conv(x, 64, 3, name="stem_conv")
    for stage, filters in enumerate([64, 128, 256, 512]):
        for block in range(2):
            name = f"stage{stage}_block{block}"
            strides = 2 if stage > 0 and block == 0 else 1
            y = _binary_conv(
                x, filters, 3, make_binarizer, strides=strides, name=f"{name}_conv0"
            )
            y = _binary_conv(y, filters, 3, make_binarizer, name=f"{name}_conv1")
            if strides != 1:
                x = _binary_conv(
                    x,
                    filters,
                    1,
                    make_binarizer,
                    strides=strides,
                    name=f"{name}_shortcut",
                )
            x = keras.layers.Add(name=f"{name}_add")([x, y])
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(
        x
    )
    return keras.Model(inputs, outputs, name="resnet_e18")


def conv1d(
    binarizer=None, *, input_shape=(40, 1), num_classes=10, width=64
) -> keras.Model:
    """A 1-D CNN for MNIST-1D, with the 1-D convs written as (k, 1) 2-D convs.

    LCE only binarizes `Conv2D`, so the signal is reshaped to `(length, 1, channels)`
    once at the input. Full-precision stem and classifier, three binary convs of
    `width` channels (scale it to compare nets of equal binary MACs).
    """
    make_binarizer = _resolve(binarizer)
    inputs = keras.Input(input_shape)
    x = keras.layers.Reshape((input_shape[0], 1, -1), name="to_2d")(inputs)
    x = _float_conv(x, 32, (5, 1), name="conv_0")
    x = _binary_conv(x, width, (3, 1), make_binarizer, name="conv_1")
    x = keras.layers.MaxPool2D((2, 1), name="pool_1")(x)
    x = _binary_conv(x, width, (3, 1), make_binarizer, name="conv_2")
    x = keras.layers.MaxPool2D((2, 1), name="pool_2")(x)
    x = _binary_conv(x, width, (3, 1), make_binarizer, name="conv_3")
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(
        x
    )
    return keras.Model(inputs, outputs, name="conv1d")


def _larq_zoo(model_name: str):
    def build_zoo_model(binarizer, *, input_shape, num_classes) -> keras.Model:
        import larq_zoo

        if binarizer is not None:
            raise ValueError(
                f"Model {model_name!r} comes from larq-zoo with its own binarizer "
                f"(SteSign(clip_value=1.25)); got binarizer={binarizer!r}. Pass "
                "binarizer=None for a QuickNet, or use 'resnet_e18' or 'vgg_small' "
                "to try other binarizers."
            )
        factory = getattr(larq_zoo.sota, model_name)
        # weights=None: larq-zoo would otherwise download ImageNet weights.
        return factory(input_shape=input_shape, num_classes=num_classes, weights=None)

    return build_zoo_model


_BUILDERS: dict[str, tuple[Callable[..., keras.Model], tuple[int, ...], int]] = {
    "binarynet": (binarynet, (28, 28, 1), 10),
    "vgg_small": (vgg_small, (32, 32, 3), 10),
    "resnet_e18": (resnet_e18, (32, 32, 3), 10),
    "conv1d": (conv1d, (40, 1), 10),
    "quicknet_small": (_larq_zoo("QuickNetSmall"), (224, 224, 3), 1000),
    "quicknet": (_larq_zoo("QuickNet"), (224, 224, 3), 1000),
    "quicknet_large": (_larq_zoo("QuickNetLarge"), (224, 224, 3), 1000),
}
