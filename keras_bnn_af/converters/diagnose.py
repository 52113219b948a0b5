r"""Which binary layers LCE left in float, why, and how to fix each.

```python
for conv in find_float_convs(model, op_counts(flatbuffer)):
    print(conv.layer, conv.reason, conv.fix)
```

**Silent float convs.** A `QuantConv2D` whose input quantizer is 1-bit is meant
to become one `LceBconv2d`. LCE 0.16 (target `"arm"`) leaves it as a float
`CONV_2D`, without any message, when (each checked with LCE here):

- the input quantizer's forward pass does not end in `larq.math.sign(...)` or
  `tf.where(cond, 1.0, -1.0)` (e.g. a function returning `tf.sign(x)`);
- the input quantizer is multi-bit (e.g. `dorefa_quantizer`);
- the quantized kernel is not \\(\pm s_o\\) per output channel \\(o\\) (within
  LCE's 0.5 %): no kernel quantizer, a multi-bit one, or a `tf.sign` that maps a
  zero weight to 0;
- `padding="same"` with a `pad_values` other than 0.0 or 1.0 (also for 1x1
  kernels). `pad_values=0.0` is *not* such a case: LCE still builds an
  `LceBconv2d` ("same-zero" padding on the ARM target), but the binary conv
  before it loses its bit-packed output (one more `LceQuantize`);
- `groups > 1` with a number of input channels per group that is not a multiple
  of 32.

Other binary layers never become binary ops: `QuantDense` (LCE:
`LceQuantize -> LceDequantize -> FULLY_CONNECTED`), `QuantDepthwiseConv2D`,
`QuantSeparableConv2D`, `QuantConv1D`, `QuantConv3D` and the transposed convs;
they are listed too, with the usual rewrite.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import larq as lq
import numpy as np

from keras_bnn_af._keras import keras, tf
from keras_bnn_af.converters.ops import op_counts as count_ops
from keras_bnn_af.models import all_layers, binary_convolutions, has_binary_input

if TYPE_CHECKING:
    from keras_bnn_af.converters.report import ExportReport

__all__ = ["FloatConv", "FloatConvError", "find_float_convs"]

_IDENTITY_OPS = ("Identity", "IdentityN")
_DENSE_FIX = (
    "Replace it with Reshape((1, 1, -1)) -> 1x1 QuantConv2D -> Flatten, as the "
    "classifiers of keras_bnn_af.models do."
)
_DEPTHWISE_FIX = (
    "Keep this layer full precision (no quantizers), or use a QuantConv2D "
    "instead (1x1, or grouped with a multiple of 32 input channels per group)."
)
_CONV1D_FIX = (
    "Reshape the signal to (length, 1, channels) once and use a (k, 1) "
    "QuantConv2D, as keras_bnn_af.models.conv1d does."
)
_OTHER_FIX = (
    "LCE binarizes only QuantConv2D: rewrite the layer as a QuantConv2D, or keep "
    "it full precision."
)
_NOT_CONV2D_FIXES = {
    lq.layers.QuantDense: _DENSE_FIX,
    lq.layers.QuantDepthwiseConv2D: _DEPTHWISE_FIX,
    lq.layers.QuantSeparableConv2D: _DEPTHWISE_FIX,
    lq.layers.QuantSeparableConv1D: _DEPTHWISE_FIX,
    lq.layers.QuantConv1D: _CONV1D_FIX,
}


class FloatConvError(ValueError):
    """`on_float_conv="raise"` and LCE left binary layers in float; `report`
    names them."""

    def __init__(self, message: str, report: "ExportReport"):
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class FloatConv:
    """A binary layer that LCE left as a float op, with the cause and the fix.

    # Attributes
        layer: the Keras layer name (None if the layer could not be identified).
        layer_type: its class name, e.g. `"QuantConv2D"`.
        reason: why LCE did not make it a binary op.
        fix: how to change the model so that it does.
    """

    layer: str | None
    layer_type: str
    reason: str
    fix: str

    def to_json(self) -> dict[str, str | None]:
        return asdict(self)


def find_float_convs(
    model: keras.Model, op_counts: Mapping[str, int]
) -> list[FloatConv]:
    """The binary layers of `model` that LCE left in float, with cause and fix.

    `op_counts` is the histogram of `model`'s LCE flatbuffer. A `QuantConv2D`
    with an input quantizer is checked for the known causes (module docstring)
    only when there are fewer `LceBconv2d` ops than such layers. If the causes
    found do not account for every missing `LceBconv2d`, the remaining layers
    are converted one at a time to find the rest. Other Larq layers with a
    1-bit input quantizer are always listed (LCE never makes them binary).
    """
    found = [
        _not_conv2d(layer)
        for layer in all_layers(model)
        if has_binary_input(layer) and not isinstance(layer, lq.layers.QuantConv2D)
    ]
    convs = binary_convolutions(model)
    missing = len(convs) - op_counts.get("LceBconv2d", 0)
    if missing <= 0:
        return found
    diagnosed = {layer.name: _conv2d_cause(layer) for layer in convs}
    causes = [cause for cause in diagnosed.values() if cause is not None]
    if len(causes) < missing:
        unexplained = [layer for layer in convs if diagnosed[layer.name] is None]
        causes += _probe(unexplained, missing - len(causes))
    order = {layer.name: index for index, layer in enumerate(all_layers(model))}
    return sorted(found + causes, key=lambda conv: order.get(conv.layer, len(order)))


def _not_conv2d(layer) -> FloatConv:
    kind = type(layer).__name__
    fix = next(
        (fix for cls, fix in _NOT_CONV2D_FIXES.items() if isinstance(layer, cls)),
        _OTHER_FIX,
    )
    return FloatConv(
        layer.name,
        kind,
        f"LCE has no binary kernel for {kind}; it runs LceQuantize -> "
        "LceDequantize -> a float op.",
        fix,
    )


def _conv2d_cause(layer) -> FloatConv | None:
    """The first known reason why LCE keeps this binary QuantConv2D in float."""
    checks = (_input_cause, _kernel_cause, _padding_cause, _groups_cause)
    for check in checks:
        found = check(layer)
        if found is not None:
            reason, fix = found
            return FloatConv(layer.name, type(layer).__name__, reason, fix)
    return None


def _input_cause(layer) -> tuple[str, str] | None:
    quantizer = layer.input_quantizer
    name = _quantizer_name(quantizer)
    precision = getattr(quantizer, "precision", None)
    if precision is not None and precision != 1:
        return (
            f"its input quantizer {name} is {precision}-bit; LCE binarizes only "
            "1-bit inputs.",
            "Use a 1-bit input quantizer such as 'ste_sign', or keep this conv "
            "full precision.",
        )
    ending = _quantizer_ending(quantizer, layer.input_shape)
    if ending is not None and ending not in ("larq.math.sign", "tf.where"):
        return (
            f"its input quantizer {name} ends in `{ending}`, not in "
            "`larq.math.sign` or `tf.where(cond, 1, -1)`, so LCE does not turn "
            "it into LceQuantize.",
            "End the quantizer's forward pass in `lq.math.sign(...)` (which maps "
            "0 to +1), e.g. `lq.quantizers.ste_sign`.",
        )
    return None


def _kernel_cause(layer) -> tuple[str, str] | None:
    fix = (
        "Use kernel_quantizer='ste_sign' (or another sign whose output is +-s per "
        "output channel) with kernel_constraint='weight_clip'."
    )
    quantizer = layer.kernel_quantizer
    if quantizer is None:
        return "it has no kernel quantizer, so its kernel is float.", fix
    precision = getattr(quantizer, "precision", None)
    if precision is not None and precision != 1:
        name = _quantizer_name(quantizer)
        return f"its kernel quantizer {name} is {precision}-bit.", fix
    if not _is_binary_filter(_quantized_kernel(layer)):
        return (
            "its quantized kernel is not +-s per output channel (LCE allows 0.5 % "
            "deviation and s != 0), e.g. `tf.sign` maps a zero weight to 0.",
            fix,
        )
    return None


def _padding_cause(layer) -> tuple[str, str] | None:
    pad_values = float(getattr(layer, "pad_values", 0.0))
    if layer.padding == "same" and pad_values not in (0.0, 1.0):
        return (
            f'padding="same" with pad_values={pad_values:g}; LCE fuses only '
            "pad_values 1.0 (and 0.0, with a correction).",
            "Use pad_values=1.0.",
        )
    return None


def _groups_cause(layer) -> tuple[str, str] | None:
    groups = getattr(layer, "groups", 1)
    channels = layer.input_shape[-1]
    if groups > 1 and channels and (channels // groups) % 32:
        return (
            f"groups={groups} leaves {channels // groups} input channels per "
            "group; LCE's grouped binary conv needs a multiple of 32.",
            "Use groups=1, or a multiple of 32 input channels per group.",
        )
    return None


def _quantizer_name(quantizer) -> str:
    name = getattr(quantizer, "__name__", None) or type(quantizer).__name__
    return repr(name)


def _quantizer_ending(quantizer, input_shape) -> str | None:
    """The op the quantizer's inference output comes from, as LCE matches it.

    `"larq.math.sign"` for `Sign(Sign(x) + c)`, `"tf.where"` for a `Select`, else
    the TensorFlow op type (e.g. `"tf.Sign"`); None if it cannot be traced.
    """
    try:
        spec = tf.TensorSpec(input_shape, tf.float32)
        graph = tf.function(lambda x: quantizer(x)).get_concrete_function(spec)
        tensor = tf.nest.flatten(graph.structured_outputs)[0]
    except Exception:  # an arbitrary user quantizer may fail to trace alone
        return None
    while tensor.op.type in _IDENTITY_OPS:
        index = tensor.value_index if tensor.op.type == "IdentityN" else 0
        tensor = tensor.op.inputs[index]
    op = tensor.op
    if op.type in ("Select", "SelectV2"):
        return "tf.where"
    if op.type == "Sign" and op.inputs[0].op.type in ("Add", "AddV2"):
        if any(t.op.type == "Sign" for t in op.inputs[0].op.inputs):
            return "larq.math.sign"
    return f"tf.{op.type}"


def _quantized_kernel(layer) -> np.ndarray:
    with lq.context.quantized_scope(True):
        return np.asarray(keras.backend.get_value(layer.kernel))


def _is_binary_filter(kernel: np.ndarray) -> bool:
    """LCE's `IsBinaryFilter`: every value is +-|w[0, 0, 0, o]| within 0.5 %."""
    scale = np.abs(kernel[0, 0, 0])
    return bool(
        np.all(scale > 0) and np.all(np.abs(np.abs(kernel) - scale) <= 0.005 * scale)
    )


def _probe(layers: list, missing: int) -> list[FloatConv]:
    """Converts each layer alone with LCE; those without an LceBconv2d are float."""
    import larq_compute_engine as lce

    found = []
    for layer in layers:
        try:
            clone = type(layer).from_config(layer.get_config())
            inputs = keras.Input(layer.input_shape[1:])
            alone = keras.Model(inputs, clone(inputs))
            clone.set_weights(layer.get_weights())
            fused = count_ops(lce.convert_keras_model(alone))["LceBconv2d"] > 0
        except Exception:  # a layer that cannot be rebuilt alone cannot be probed
            continue
        if not fused:
            found.append(
                FloatConv(
                    layer.name,
                    type(layer).__name__,
                    "LCE left it in float when converted on its own, for no known "
                    "cause.",
                    "Simplify its quantizers and padding until it converts to an "
                    "LceBconv2d (see keras_bnn_af.converters.diagnose's docstring).",
                )
            )
    if len(found) < missing:
        found.append(
            FloatConv(
                None,
                "QuantConv2D",
                f"{missing - len(found)} binary QuantConv2D layer(s) became float "
                "convs in the whole model although each one converts to an "
                "LceBconv2d on its own: a pattern between layers blocks fusion.",
                "Look for ops between the quantizer and the conv (e.g. a Reshape) "
                "or a shared quantizer output.",
            )
        )
    return found
