r"""Numeric work features of the operators of an LCE-converted model.

```python
features = graph_features(read_graph("model.tflite"))
features["bconv_macs"], features.get("elementwise_sin_kelems", 0.0)
```

A latency model \(t \approx \sum_f c_f\, x_f\) is linear in these features, so
each one counts work in units meant to keep its coefficient \(c_f\) (time
per unit) of order one: MACs in millions (`_macs`), tensor elements in
thousands (`_kelems`), bit-packed 32-bit words in thousands (`_kwords`), and
ops as plain counts (`_count`). With the output
tensor \(y\), \(|y|\) its element count, \(P = |y| / c_\text{out}\) its
positions (batch \(\times\) height \(\times\) width), \(k = k_h k_w\) the
kernel or pooling window, \(g\) the groups,
\(M = P\, c_\text{out}\, k\, c_\text{in} / g\) a float convolution's MACs
and \(M_b = P\, c_\text{out}\, k\, 32 \lceil c_\text{in} / (32 g) \rceil\) a
binary one's, its input channels padded to whole 32-bit words:

| feature | ops | value per op |
|---|---|---|
| `graph_count` | the graph | 1 (interpreter overhead) |
| `bconv_count` | `LceBconv2d` | 1 |
| `bconv_macs` | `LceBconv2d` needing im2col | \(M_b / 10^6\) |
| `bconv_macs_1x1` | `LceBconv2d` 1x1, stride 1 | \(M_b / 10^6\) |
| `bconv_out_packed_kelems` | `LceBconv2d`, int32 output | \(P\, c_\text{out} / 10^3\) |
| `bconv_out_float_kelems` | `LceBconv2d`, float output | \(P\, c_\text{out} / 10^3\) |
| `quantize_count` | `LceQuantize` | 1 |
| `quantize_kelems` | `LceQuantize` | float input \(|x| / 10^3\) |
| `dequantize_count` | `LceDequantize` | 1 |
| `dequantize_kelems` | `LceDequantize` | float output \(|y| / 10^3\) |
| `float_linear_count` | `CONV_2D`, `DEPTHWISE_CONV_2D`, `FULLY_CONNECTED` | 1 |
| `conv_macs` | `CONV_2D` | \(M / 10^6\) |
| `depthwise_macs` | `DEPTHWISE_CONV_2D` | \(|y|\, k / 10^6\) |
| `dense_macs` | `FULLY_CONNECTED` | \(|y|\, c_\text{in} / 10^6\) |
| `pool_count` | `MAX_POOL_2D`, `AVERAGE_POOL_2D`, `LceBMaxPool2d` | 1 |
| `pool_kelems` | `MAX_POOL_2D`, `AVERAGE_POOL_2D` | \(|y|\, k / 10^3\) |
| `bmaxpool_kwords` | `LceBMaxPool2d` | packed words \(|y|\, k / 10^3\) |
| `movement_count` | `MOVEMENT_OPS` | 1 |
| `movement_kelems` | `MOVEMENT_OPS` | \(\max(|x_0|, |y|) / 10^3\) |
| `elementwise_count` | `ELEMENTWISE_OPS` | 1 |
| `elementwise_<kind>_kelems` | `ELEMENTWISE_OPS` of that kind | \(|y| / 10^3\) |

A pooling op reads \(k\) inputs per output, so its work is \(|y|\, k\)
(\(= |x|\) for the usual non-overlapping window). `MEAN` (global average
pooling) reads all of \(x_0\) and `CONCATENATION`, `PAD` or `TILE` write all
of \(y\), hence the larger of the two for data movement.

**Binary convolutions.** LCE stores the filter as OHWI with the input
channels bit-packed, 32 to an int32 word: shape
\((c_\text{out}, k_h, k_w, \lceil c_\text{in} / (32 g) \rceil)\) with \(g\) groups,
so \(c_\text{in}\) comes from the op's `channels_in` option and
\(g = \lceil c_\text{in} / 32 \rceil / \text{filter depth}\). The output is
bit-packed (int32, last dimension \(\lceil c_\text{out} / 32 \rceil\)) when
every consumer binarizes it, possibly after a BatchNorm (LCE folds the
BatchNorm and sign into per-channel thresholds) or a max pool (which becomes
an `LceBMaxPool2d` on the packed words). Otherwise it is float, scaled and shifted
by the folded BatchNorm. Both cost \(P\, c_\text{out}\) output transforms, so
both count real channels. LCE's optimized kernel multiplies the input of a
1x1 stride-1 conv as a matrix, the others gather \(k_h k_w\) patches first
(im2col), so their MACs are separate features: they cost differently per MAC.
LCE multiplies whole 32-bit words, so 16 input channels cost what 32 do: on
this host, counting padded MACs \(M_b\) instead of \(M\) cut the held-out
median error of the host profile from 11.9 % to 6.6 % (benchmarks/
latency_model.py on the same measurements).

An op outside `KNOWN_OPS` is an error, not a zero: a model with it cannot be
predicted.
"""

import math
from collections import Counter
from pathlib import Path

from keras_bnn_af.latency.graph import Graph, Op, TensorInfo, read_graph

__all__ = [
    "ELEMENTWISE_OPS",
    "FEATURES",
    "KNOWN_OPS",
    "MOVEMENT_OPS",
    "graph_features",
    "op_breakdown",
    "op_features",
]

BITS_PER_WORD = 32

#: Elementwise op name -> kind; the op counts `elementwise_<kind>_kelems`.
#: Variants with one kernel cost share a kind: RELU/RELU6/RELU_N1_TO_1 are a
#: clamp, SELECT/SELECT_V2 a select, the six comparisons one compare.
ELEMENTWISE_OPS: dict[str, str] = {
    "ADD": "add",
    "SUB": "sub",
    "MUL": "mul",
    "DIV": "div",
    "MAXIMUM": "maximum",
    "MINIMUM": "minimum",
    "NEG": "neg",
    "ABS": "abs",
    "SQUARE": "square",
    "SQRT": "sqrt",
    "SIGN": "sign",
    "FLOOR": "floor",
    "SIN": "sin",
    "COS": "cos",
    "EXP": "exp",
    "LOG": "log",
    "TANH": "tanh",
    "LOGISTIC": "logistic",
    "ATAN2": "atan2",
    "HARD_SWISH": "hard_swish",
    "RELU": "relu",
    "RELU6": "relu",
    "RELU_N1_TO_1": "relu",
    "SELECT": "select",
    "SELECT_V2": "select",
    "LESS": "compare",
    "LESS_EQUAL": "compare",
    "GREATER": "compare",
    "GREATER_EQUAL": "compare",
    "EQUAL": "compare",
    "NOT_EQUAL": "compare",
}

#: Ops that copy, reshape, reduce or normalize tensors with little arithmetic.
MOVEMENT_OPS: tuple[str, ...] = (
    "RESHAPE",
    "SQUEEZE",
    "EXPAND_DIMS",
    "CONCATENATION",
    "PAD",
    "PADV2",
    "MEAN",
    "SOFTMAX",
    "QUANTIZE",
    "DEQUANTIZE",
    "STRIDED_SLICE",
    "SLICE",
    "TRANSPOSE",
    "SPLIT",
    "PACK",
    "UNPACK",
    "TILE",
    "BROADCAST_TO",
    "CAST",
)

#: Every op name with features -> the family that measures it.
KNOWN_OPS: dict[str, str] = {
    "LceBconv2d": "bconv",
    "LceQuantize": "quantize",
    "LceDequantize": "dequantize",
    "LceBMaxPool2d": "bmaxpool",
    "CONV_2D": "conv",
    "DEPTHWISE_CONV_2D": "depthwise",
    "FULLY_CONNECTED": "dense",
    "MAX_POOL_2D": "pool",
    "AVERAGE_POOL_2D": "pool",
    **dict.fromkeys(MOVEMENT_OPS, "movement"),
    **dict.fromkeys(ELEMENTWISE_OPS, "elementwise"),
}

FEATURES: tuple[str, ...] = (
    "graph_count",
    "bconv_count",
    "bconv_macs",
    "bconv_macs_1x1",
    "bconv_out_packed_kelems",
    "bconv_out_float_kelems",
    "quantize_count",
    "quantize_kelems",
    "dequantize_count",
    "dequantize_kelems",
    "float_linear_count",
    "conv_macs",
    "depthwise_macs",
    "dense_macs",
    "pool_count",
    "pool_kelems",
    "bmaxpool_kwords",
    "movement_count",
    "movement_kelems",
    "elementwise_count",
    *(f"elementwise_{kind}_kelems" for kind in dict.fromkeys(ELEMENTWISE_OPS.values())),
)


def op_features(op: Op, *, position: int | None = None) -> dict[str, float]:
    """The non-zero features of one op (see the module docstring).

    `position`, the op's index in its graph, only sharpens the error for an op
    outside `KNOWN_OPS`.
    """
    family = KNOWN_OPS.get(op.name)
    if family is None:
        raise ValueError(_unknown_op_message(op, position))
    features = _FAMILIES[family](op)
    return {name: value for name, value in features.items() if value}


def graph_features(graph: Graph | str | Path | bytes) -> dict[str, float]:
    """\\(\\sum_\\text{ops}\\) `op_features` plus `graph_count` = 1: the model's
    non-zero features. `graph` is a `Graph` or what `read_graph` reads."""
    total: Counter = Counter({"graph_count": 1.0})
    for _, _, features in op_breakdown(graph):
        total.update(features)
    return dict(total)


def op_breakdown(graph: Graph | str | Path | bytes) -> list[tuple[int, str, dict]]:
    """`[(op_index, op.name, op_features(op))]` in execution order."""
    if not isinstance(graph, Graph):
        graph = read_graph(graph)
    return [
        (index, op.name, op_features(op, position=index))
        for index, op in enumerate(graph.ops)
    ]


def _bconv(op: Op) -> dict[str, float]:
    r"""Binary MACs \(M_b\) (input channels in whole words) and outputs."""
    output, filters = op.outputs[0], op.inputs[1]
    c_out, k_h, k_w, _ = filters.shape
    outputs = _positions(output) * c_out
    pointwise = (k_h, k_w) == (1, 1) and _strides(op) == (1, 1)
    packed = output.dtype == "int32"
    macs = outputs * k_h * k_w * _bconv_group_depth(op.options["channels_in"], filters)
    return {
        "bconv_count": 1.0,
        "bconv_macs_1x1" if pointwise else "bconv_macs": macs / 1e6,
        "bconv_out_packed_kelems" if packed else "bconv_out_float_kelems": outputs
        / 1e3,
    }


def _bconv_group_depth(channels_in: int, filters: TensorInfo) -> int:
    r"""\(32 \lceil c_\text{in} / (32 g) \rceil\): the input bits one output
    channel multiplies, in whole words.

    A bit-packed (int32) filter has depth \(\lceil c_\text{in} / 32 \rceil / g\)
    words; a float one (older LCE) \(c_\text{in} / g\) channels.
    """
    depth = filters.shape[3]
    if filters.dtype != "int32":
        return BITS_PER_WORD * math.ceil(depth / BITS_PER_WORD)
    groups = max(math.ceil(channels_in / BITS_PER_WORD) // depth, 1)
    return BITS_PER_WORD * math.ceil(channels_in / groups / BITS_PER_WORD)


def _conv(op: Op) -> dict[str, float]:
    _, k_h, k_w, depth = op.inputs[1].shape
    macs = op.outputs[0].size * k_h * k_w * depth
    return {"float_linear_count": 1.0, "conv_macs": macs / 1e6}


def _depthwise(op: Op) -> dict[str, float]:
    _, k_h, k_w, _ = op.inputs[1].shape
    macs = op.outputs[0].size * k_h * k_w
    return {"float_linear_count": 1.0, "depthwise_macs": macs / 1e6}


def _dense(op: Op) -> dict[str, float]:
    macs = op.outputs[0].size * op.inputs[1].shape[-1]
    return {"float_linear_count": 1.0, "dense_macs": macs / 1e6}


def _quantize(op: Op) -> dict[str, float]:
    return {"quantize_count": 1.0, "quantize_kelems": op.inputs[0].size / 1e3}


def _dequantize(op: Op) -> dict[str, float]:
    return {"dequantize_count": 1.0, "dequantize_kelems": op.outputs[0].size / 1e3}


def _pool(op: Op) -> dict[str, float]:
    window = op.options["filter_height"] * op.options["filter_width"]
    return {"pool_count": 1.0, "pool_kelems": op.outputs[0].size * window / 1e3}


def _bmaxpool(op: Op) -> dict[str, float]:
    window = op.options["filter_height"] * op.options["filter_width"]
    return {"pool_count": 1.0, "bmaxpool_kwords": op.outputs[0].size * window / 1e3}


def _movement(op: Op) -> dict[str, float]:
    elements = max(op.inputs[0].size if op.inputs else 0, op.outputs[0].size)
    return {"movement_count": 1.0, "movement_kelems": elements / 1e3}


def _elementwise(op: Op) -> dict[str, float]:
    feature = f"elementwise_{ELEMENTWISE_OPS[op.name]}_kelems"
    return {"elementwise_count": 1.0, feature: op.outputs[0].size / 1e3}


def _positions(tensor: TensorInfo) -> int:
    """\\(P\\): batch \\(\\times\\) height \\(\\times\\) width of an NHWC tensor."""
    return math.prod(dim if dim >= 0 else 1 for dim in tensor.shape[:-1])


def _strides(op: Op) -> tuple[int, int]:
    return op.options.get("stride_height", 1), op.options.get("stride_width", 1)


def _unknown_op_message(op: Op, position: int | None) -> str:
    where = f"op {position} of the model" if position is not None else "an op"
    return (
        f"{where} is {op.name!r}, which has no latency features. Known ops: "
        f"{', '.join(sorted(KNOWN_OPS))}. A model with {op.name!r} cannot be "
        "predicted: open an issue asking for it to be added to "
        "keras_bnn_af.latency.features.KNOWN_OPS."
    )


_FAMILIES = {
    "bconv": _bconv,
    "quantize": _quantize,
    "dequantize": _dequantize,
    "bmaxpool": _bmaxpool,
    "conv": _conv,
    "depthwise": _depthwise,
    "dense": _dense,
    "pool": _pool,
    "movement": _movement,
    "elementwise": _elementwise,
}
