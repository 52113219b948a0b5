"""The DARTS-style supernet: partial-channel mixed edges, cells, α and β.

A cell has two inputs (the outputs of the two cells before it, each brought
to `C` channels by a binary 1 x 1 conv) and `nodes` intermediate nodes; node
`j` sums one mixed edge from each earlier state (the two inputs and nodes
`0..j-1`), and the cell's output concatenates its nodes (`nodes * C`
channels). Reduction cells (at 1/3 and 2/3 of the depth) halve the map with
stride-2 edges from the inputs and double `C`.

**Mixed edge with partial channels** (PC-DARTS). With `K = partial_channels`,
the edge takes the first `C/K` channels `x_a` of its input `x = [x_a, x_b]`
and returns

    shuffle_K([sum_o softmax(α_edge)_o * o(x_a),  x_b'])

where `x_b' = x_b` at stride 1 and `maxpool_2(x_b)` at stride 2, and
`shuffle_K` interleaves the `K` channel groups so the next edge samples other
channels. Each operation runs on `C/K` channels, so memory and time per step
shrink about `K` times.

**Edge normalisation** (PC-DARTS's β): node `j` is

    sum_i softmax(β_j)_i * edge_ij(s_i)

over its incoming edges, which steadies the choice of inputs made at
derivation. α (edges x ops) and β (edges) are shared by all cells of one type
(normal, reduction) and are the `architecture_variables`; everything else is
in `weight_variables`.
"""

from __future__ import annotations

from keras_bnn_af import models
from keras_bnn_af._keras import keras, tf
from keras_bnn_af.searchers.ubnas.genotype import edge_count
from keras_bnn_af.searchers.ubnas.layers import Geometry, apply, make_op

__all__ = [
    "Cell",
    "MixedEdge",
    "Supernet",
    "binary_pointwise",
    "channel_shuffle",
    "reduction_indices",
]


def channel_shuffle(x: tf.Tensor, groups: int) -> tf.Tensor:
    """Interleaves `groups` channel groups of `n` channels each: channel
    `g * n + i` moves to `i * groups + g`."""
    if groups == 1:
        return x
    shape = tf.shape(x)
    channels = x.shape[-1]
    x = tf.reshape(x, [shape[0], shape[1], shape[2], groups, channels // groups])
    x = tf.transpose(x, [0, 1, 2, 4, 3])
    return tf.reshape(x, [shape[0], shape[1], shape[2], channels])


class MixedEdge(keras.layers.Layer):
    """One edge: the α-weighted sum of every op on the first `C/K` channels."""

    def __init__(
        self, ops, channels, stride, partial_channels, binarizer, geometry, **kwargs
    ):
        super().__init__(**kwargs)
        self.partial = channels // partial_channels
        self.groups = partial_channels
        self.stride = geometry.stride(stride)
        self.ops = [
            make_op(name, self.partial, stride, binarizer, geometry, affine=False)
            for name in ops
        ]

    def call(self, x, weights, training=None):
        sampled, passed = x[..., : self.partial], x[..., self.partial :]
        mixed = tf.add_n(
            [
                weights[index] * apply(op, sampled, training)
                for index, op in enumerate(self.ops)
            ]
        )
        if self.groups == 1:
            return mixed
        if self.stride != (1, 1):
            passed = tf.nn.max_pool2d(passed, self.stride, self.stride, "SAME")
        return channel_shuffle(tf.concat([mixed, passed], axis=-1), self.groups)


class Cell(keras.layers.Layer):
    """A normal or reduction cell of mixed edges with edge normalisation."""

    def __init__(
        self,
        ops,
        nodes,
        channels,
        *,
        reduction,
        reduction_before,
        partial_channels,
        binarizer,
        geometry,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.nodes = nodes
        self.preprocess = [
            binary_pointwise(
                channels, 2 if reduction_before else 1, binarizer, geometry
            ),
            binary_pointwise(channels, 1, binarizer, geometry),
        ]
        self.edges = [
            MixedEdge(
                ops,
                channels,
                2 if reduction and source < 2 else 1,
                partial_channels,
                binarizer,
                geometry,
                name=f"edge_{target}_{source}",
            )
            for target in range(nodes)
            for source in range(target + 2)
        ]

    def call(self, s0, s1, alphas, betas, training=None):
        states = [
            apply(self.preprocess[0], s0, training),
            apply(self.preprocess[1], s1, training),
        ]
        offset = 0
        for target in range(self.nodes):
            incoming = target + 2
            node_betas = tf.nn.softmax(betas[offset : offset + incoming])
            states.append(
                tf.add_n(
                    [
                        node_betas[source]
                        * self.edges[offset + source](
                            states[source], alphas[offset + source], training=training
                        )
                        for source in range(incoming)
                    ]
                )
            )
            offset += incoming
        return tf.concat(states[2:], axis=-1)


def binary_pointwise(channels, stride, binarizer, geometry, label=None):
    """binarizer -> binary 1 x 1 conv (stride 1 or 2) -> BN: a cell's input."""
    names = [{"name": f"{label}_{part}"} if label else {} for part in ("bconv", "bn")]
    return [
        models.binary_conv2d(
            channels, 1, binarizer(), strides=geometry.stride(stride), **names[0]
        ),
        keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, **names[1]),
    ]


class Supernet(keras.Model):
    """Float stem -> cells -> global average pool -> dense softmax.

    # Arguments
        input_shape: `(H, W, C)` images or `(length, C)` sequences.
        num_classes: classes of the softmax head.
        ops: candidate op names (`space.OPS`), checked by the caller.
        cells: cells in all; reductions at `cells // 3` and `2 * cells // 3`.
        nodes: intermediate nodes per cell.
        channels: `C` of the first cells (doubled at each reduction).
        partial_channels: `K`, the edge sees `C/K` channels.
        binarizer: a zero-argument factory of input quantizers.
        seed: seeds α and β (`1e-3 * N(0, 1)`, as DARTS).
    """

    def __init__(
        self,
        input_shape,
        num_classes,
        *,
        ops,
        cells,
        nodes,
        channels,
        partial_channels,
        binarizer,
        stem_multiplier=3,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.ops, self.nodes = tuple(ops), nodes
        self.one_d = len(input_shape) == 2
        geometry = Geometry(one_d=self.one_d)
        self.stem = keras.Sequential(
            [
                keras.layers.Conv2D(
                    stem_multiplier * channels,
                    geometry.kernel(3),
                    padding="same",
                    use_bias=False,
                ),
                keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5),
            ],
            name="stem",
        )
        self.cell_layers, self.reductions = [], []
        reduction_before = False
        for index in range(cells):
            reduction = index in reduction_indices(cells)
            channels *= 2 if reduction else 1
            self.cell_layers.append(
                Cell(
                    self.ops,
                    nodes,
                    channels,
                    reduction=reduction,
                    reduction_before=reduction_before,
                    partial_channels=partial_channels,
                    binarizer=binarizer,
                    geometry=geometry,
                    name=f"cell_{index}",
                )
            )
            self.reductions.append(reduction)
            reduction_before = reduction
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.head = keras.layers.Dense(num_classes, activation="softmax", name="head")
        init = keras.initializers.RandomNormal(stddev=1e-3, seed=seed)
        shape = (edge_count(nodes), len(self.ops))
        self.alphas = {
            kind: self.add_weight(name=f"alpha_{kind}", shape=shape, initializer=init)
            for kind in ("normal", "reduce")
        }
        self.betas = {
            kind: self.add_weight(
                name=f"beta_{kind}", shape=shape[:1], initializer=init
            )
            for kind in ("normal", "reduce")
        }

    @classmethod
    def for_search(cls, config, input_shape, num_classes) -> Supernet:
        """The supernet of a `NasConfig`, built (its variables exist)."""
        from keras_bnn_af.quantizers import binarizer_factory

        net = cls(
            input_shape,
            num_classes,
            ops=config.ops,
            cells=config.cells,
            nodes=config.nodes,
            channels=config.channels,
            partial_channels=config.partial_channels,
            binarizer=binarizer_factory(config.binarizer),
            seed=config.seed,
        )
        net(tf.zeros((1, *input_shape)))
        return net

    @property
    def architecture_variables(self) -> list[tf.Variable]:
        """α and β of the normal and the reduction cells."""
        return [*self.alphas.values(), *self.betas.values()]

    @property
    def weight_variables(self) -> list[tf.Variable]:
        """Every trainable variable except α and β."""
        arch = {id(variable) for variable in self.architecture_variables}
        return [v for v in self.trainable_variables if id(v) not in arch]

    def call(self, x, training=None):
        if self.one_d:
            x = tf.expand_dims(x, axis=2)
        s0 = s1 = self.stem(x, training=training)
        weights = {
            kind: tf.nn.softmax(alpha, axis=-1) for kind, alpha in self.alphas.items()
        }
        for cell, reduction in zip(self.cell_layers, self.reductions, strict=True):
            kind = "reduce" if reduction else "normal"
            s0, s1 = (
                s1,
                cell(s0, s1, weights[kind], self.betas[kind], training=training),
            )
        return self.head(self.pool(s1))


def reduction_indices(cells: int) -> tuple[int, ...]:
    """Cells that reduce: DARTS's `cells // 3` and `2 * cells // 3`."""
    return tuple(sorted({cells // 3, 2 * cells // 3}))
