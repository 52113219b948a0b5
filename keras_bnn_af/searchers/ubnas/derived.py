"""The discrete Larq network of a genotype, ready to train and export to LCE.

```python
model = build_derived(genotype, input_shape=(28, 28, 1), num_classes=10,
                      cells=3, channels=16)
export_lce(model, "ubnas.tflite")     # every binary conv one LceBconv2d
```

The same skeleton as the supernet (float stem, cells, global average pool,
dense softmax; reductions at 1/3 and 2/3 of the depth), with each node the sum
of its genotype's two operations on all `C` channels. Every binary conv is a
`models.binary_conv2d` followed by a BatchNorm, the layout LCE fuses into one
`LceBconv2d` (with the BatchNorm folded into its output scale and bias); two
dilated convs of one kernel on one input run as one conv of twice the filters
(`_shared_dilated`), because LCE fuses neither otherwise.
"""

from __future__ import annotations

from keras_bnn_af._keras import keras
from keras_bnn_af.quantizers import binarizer_factory
from keras_bnn_af.searchers.ubnas.genotype import Genotype
from keras_bnn_af.searchers.ubnas.layers import Geometry, apply, make_op
from keras_bnn_af.searchers.ubnas.space import OPS, check_channels
from keras_bnn_af.searchers.ubnas.supernet import binary_pointwise, reduction_indices

__all__ = ["build_derived"]


def build_derived(
    genotype: Genotype,
    *,
    input_shape,
    num_classes: int,
    cells: int,
    channels: int,
    binarizer="approx_sign",
    stem_multiplier: int = 3,
    name: str = "ubnas",
) -> keras.Model:
    """The Keras model of `genotype` (see the module docstring).

    # Arguments
        binarizer: the activations' binarizer spec (`keras_bnn_af.quantizers`).
    """
    make_binarizer = binarizer_factory(binarizer)
    one_d = len(input_shape) == 2
    geometry = Geometry(one_d=one_d)
    inputs = keras.Input(tuple(input_shape))
    x = inputs
    if one_d:
        x = keras.layers.Reshape((input_shape[0], 1, input_shape[1]), name="to_2d")(x)
    x = keras.layers.Conv2D(
        stem_multiplier * channels,
        geometry.kernel(3),
        padding="same",
        use_bias=False,
        name="stem",
    )(x)
    s0 = s1 = keras.layers.BatchNormalization(
        momentum=0.9, epsilon=1e-5, name="stem_bn"
    )(x)
    reduction_before = False
    for index in range(cells):
        reduction = index in reduction_indices(cells)
        channels *= 2 if reduction else 1
        kind = "reduce" if reduction else "normal"
        pairs = getattr(genotype, kind)
        check_channels([op for op, _ in pairs], channels, f"cell {index} ({kind})")
        cell = _Cell(f"cell_{index}", channels, reduction, make_binarizer, geometry)
        s0, s1 = s1, cell(s0, s1, pairs, genotype.nodes, reduction_before)
        reduction_before = reduction
    x = keras.layers.GlobalAveragePooling2D()(s1)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name=name)


class _Cell:
    """Builds one cell's layers on the functional graph."""

    def __init__(self, label, channels, reduction, make_binarizer, geometry):
        self.label, self.channels, self.reduction = label, channels, reduction
        self.make_binarizer, self.geometry = make_binarizer, geometry

    def __call__(self, s0, s1, pairs, nodes, reduction_before):
        states = [
            self._pointwise(s0, 2 if reduction_before else 1, "input_0"),
            self._pointwise(s1, 1, "input_1"),
        ]
        shared = _shared_dilated(pairs)
        outputs = {}
        for node in range(nodes):
            branches = []
            for branch in (2 * node, 2 * node + 1):
                if branch not in outputs:
                    outputs.update(
                        self._op(pairs, shared.get(branch, [branch]), states)
                    )
                branches.append(outputs[branch])
            states.append(keras.layers.Add(name=f"{self.label}_node_{node}")(branches))
        if nodes == 1:  # a one-input Concatenate cannot be rebuilt from its config
            return states[2]
        return keras.layers.Concatenate(name=self.label)(states[2:])

    def _pointwise(self, x, stride, name):
        layers = binary_pointwise(
            self.channels,
            stride,
            self.make_binarizer,
            self.geometry,
            f"{self.label}_{name}",
        )
        return apply(layers, x)

    def _op(self, pairs, branches, states) -> dict:
        """`{branch: output}` of one op, run once for all `branches` it serves."""
        op, source = pairs[branches[0]]
        stride = 2 if self.reduction and source < 2 else 1
        layers = make_op(
            op,
            self.channels * len(branches),
            stride,
            self.make_binarizer,
            self.geometry,
            label=f"{self.label}_"
            + "_".join(f"b{branch}" for branch in branches)
            + f"_{op}",
        )
        y = apply(layers, states[source])
        if len(branches) == 1:
            return {branches[0]: y}
        c = self.channels
        return {
            branch: y[..., i * c : (i + 1) * c] for i, branch in enumerate(branches)
        }


def _shared_dilated(pairs) -> dict[int, list[int]]:
    """Branches that run one dilated conv on the same input, merged.

    TensorFlow lowers a dilated conv to SpaceToBatchND -> conv ->
    BatchToSpaceND and shares one SpaceToBatchND between two convs of the same
    kernel on the same tensor; LCE 0.16 then fuses neither and leaves both in
    float (`CONV_2D`, checked). One conv with the filters of both, split after
    its BatchNorm, computes the same and is one `LceBconv2d`.
    """
    groups: dict[tuple, list[int]] = {}
    for branch, (op, source) in enumerate(pairs):
        if OPS[op].dilation > 1:
            groups.setdefault((op, source), []).append(branch)
    return {
        b: members for members in groups.values() if len(members) > 1 for b in members
    }
