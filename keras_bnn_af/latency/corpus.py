"""Random binary networks to fit and test a latency model on.

```python
spec = random_spec(seed=7)          # a NetSpec: input, stem, blocks, binarizers
model = build_net(spec)             # a Larq model with trained-looking statistics
flatbuffer = convert(model)         # what `export_lce` writes for it, unverified
```

A net is `input -> float 3x3 stem conv -> BN -> blocks -> global average pool ->
dense 10`, and a block is

    binarizer -> binary k x k conv (stride s) -> [max pool] -> BN -> [max pool]
        [-> + shortcut]

with its depth (2-8 blocks), widths (16-256 channels, some not a multiple of 32),
kernels (1, 3, 5), strides, 2x2 max pooling before the BatchNorm (a float
`MAX_POOL_2D`) or after it (as the reference nets do: LCE makes it a binary
`LceBMaxPool2d` on the next binarizer's bits), shortcuts (a float `ADD`, which
keeps the binary conv's output in float) and input size drawn from one
`random.Random(seed)`.
Each net uses one binarizer family of `BINARIZERS`, or with probability 0.3 a
family per block, so foldable binarizers (exported as a plain sign) and
non-foldable ones (float `SIN` or `SUB` ops before an `LceQuantize`) both
appear. BatchNorm statistics and quantizer weights are random and seeded
(`keras_bnn_af.testing`), so folding sees realistic thresholds.
"""

import random
from dataclasses import dataclass

from keras_bnn_af._keras import keras
from keras_bnn_af.models import binary_conv2d
from keras_bnn_af.quantizers import binarizer_factory

__all__ = [
    "BINARIZERS",
    "TEST_INPUT_SIZES",
    "TRAIN_INPUT_SIZES",
    "Block",
    "NetSpec",
    "build_net",
    "convert",
    "random_spec",
]

#: Binarizer spec -> how LCE runs it after `export_lce`'s threshold folding.
BINARIZERS: dict[str, str] = {
    "ste_sign": "plain sign",
    "gaaf:x_plus_sin_x": "folded into the BatchNorm (monotone)",
    "rsign": "folded into the BatchNorm (a learned threshold)",
    "gaaf:sin_x": "float SIN before LceQuantize (not monotone)",
    "dithered_sign:design_2x2": "float SUBs before LceQuantize (spatial thresholds)",
}
#: Input sizes of the nets a profile is fitted on, and of the held-out ones.
TRAIN_INPUT_SIZES = (28, 32, 40, 48, 56, 64)
TEST_INPUT_SIZES = (30, 36, 44, 52, 60)
_WIDTHS = (16, 32, 48, 64, 96, 128, 192, 256)
_KERNELS = (1, 3, 3, 3, 5)


@dataclass(frozen=True)
class Block:
    """One binary block (see the module docstring)."""

    width: int
    kernel: int
    stride: int
    binarizer: str
    pool: bool = False
    shortcut: bool = False
    pool_after_bn: bool = False


@dataclass(frozen=True)
class NetSpec:
    """A whole net: input `size x size x channels`, the stem and the blocks."""

    seed: int
    size: int
    channels: int
    stem_width: int
    stem_stride: int
    blocks: tuple[Block, ...]

    @property
    def name(self) -> str:
        return f"bnn{self.seed}_{self.size}x{self.size}x{self.channels}"


def random_spec(seed: int, input_sizes=TRAIN_INPUT_SIZES) -> NetSpec:
    """The net of `seed`, its input size drawn from `input_sizes`."""
    rng = random.Random(seed)
    size = rng.choice(input_sizes)
    stem_stride = rng.choice((1, 1, 2))
    families = list(BINARIZERS)
    family = rng.choice(families)
    stem_width = rng.choice((16, 32, 64))
    spatial, width = -(-size // stem_stride), stem_width
    blocks = []
    for _ in range(rng.randint(2, 8)):
        binarizer = family if rng.random() < 0.7 else rng.choice(families)
        stride = 2 if spatial >= 8 and rng.random() < 0.3 else 1
        spatial = -(-spatial // stride)
        pool = spatial >= 8 and stride == 1 and rng.random() < 0.2
        spatial = spatial // 2 if pool else spatial
        new_width = rng.choice(_WIDTHS) if rng.random() < 0.5 else width
        shortcut = (
            new_width == width and stride == 1 and not pool and rng.random() < 0.3
        )
        kernel = rng.choice(_KERNELS)
        after = pool and rng.random() < 0.5
        blocks.append(
            Block(new_width, kernel, stride, binarizer, pool, shortcut, after)
        )
        width = new_width
    return NetSpec(
        seed=seed,
        size=size,
        channels=rng.choice((1, 3)),
        stem_width=stem_width,
        stem_stride=stem_stride,
        blocks=tuple(blocks),
    )


def build_net(spec: NetSpec) -> keras.Model:
    """The Larq model of `spec`, with seeded random statistics and weights."""
    from keras_bnn_af.testing import randomize_batch_norm, set_quantizer_weights

    keras.utils.set_random_seed(spec.seed)
    inputs = keras.Input((spec.size, spec.size, spec.channels))
    x = keras.layers.Conv2D(
        spec.stem_width, 3, strides=spec.stem_stride, padding="same", use_bias=False
    )(inputs)
    x = keras.layers.BatchNormalization()(x)
    for block in spec.blocks:
        before = x
        x = binary_conv2d(
            block.width,
            block.kernel,
            binarizer_factory(block.binarizer)(),
            strides=block.stride,
        )(x)
        if block.pool and not block.pool_after_bn:
            x = keras.layers.MaxPool2D(2)(x)
        x = keras.layers.BatchNormalization()(x)
        if block.pool and block.pool_after_bn:
            x = keras.layers.MaxPool2D(2)(x)
        if block.shortcut:
            x = keras.layers.Add()([x, before])
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10)(x), name=spec.name)
    randomize_batch_norm(model, seed=spec.seed)
    set_quantizer_weights(model, 0.2, 1.0, seed=spec.seed)
    return model


def convert(model: keras.Model) -> bytes:
    """The flatbuffer `export_lce` would write (thresholds folded), unverified."""
    import larq_compute_engine as lce

    from keras_bnn_af._quiet import native_output_captured
    from keras_bnn_af.converters import fold_thresholds

    folded, _ = fold_thresholds(model)
    with native_output_captured():
        return lce.convert_keras_model(folded)
