"""Copies of a model with other quantizers: the float32 and `ste_sign` twins.

```python
twin = float32_twin(model)  # no quantizers: the size and latency baseline
convert_float32(twin)  # its float32 TFLite flatbuffer
sign_twin(model)  # every binarizer an ste_sign: the AF latency baseline
clone_with_quantizers(model, {"conv_1": {"input_quantizer": "ste_sign"}}.get)
```

All three copies, and threshold folding, come from `clone_with_quantizers`: the
model rebuilt from its config (nested models included) with chosen quantizer
entries replaced, and its weights copied, minus the replaced quantizers' own
weights (an RSign threshold, a GAAF scale) and plus those of the new ones.
"""

import copy
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from keras_bnn_af._keras import keras, tf
from keras_bnn_af._quiet import native_output_captured
from keras_bnn_af.models import QUANTIZER_KEYS, all_layers, quantizer_weights

__all__ = [
    "clone_with_quantizers",
    "convert_float32",
    "float32_twin",
    "is_plain_sign",
    "sign_twin",
]

#: A layer name -> its replaced quantizers (`{key: spec}`), or None to keep them.
Replacements = Callable[[str], Mapping[str, Any] | None]

_NO_QUANTIZERS = dict.fromkeys(QUANTIZER_KEYS)
_PLAIN_SIGNS = ("ste_sign", "SteSign")


def clone_with_quantizers(
    model: keras.Model,
    replace: Replacements,
    *,
    weights: Mapping[str, Any] | None = None,
) -> keras.Model:
    """A copy of `model` where some layers get other quantizers.

    # Arguments
        model: a functional or Sequential model; nested models are walked too.
        replace: `replace(layer_name)` is None (keep the layer's quantizers) or
            `{key: spec}`, e.g. `{"input_quantizer": "ste_sign"}`, where `key` is
            one of `QUANTIZER_KEYS` (keys the layer does not have are ignored)
            and `spec` a quantizer alias, config dict or None.
        weights: layer name -> value (broadcast to each weight's shape) of the
            new quantizers' weights in that layer; without it they keep their
            initial values.

    # Returns
        The new model. Every weight is copied, except the replaced quantizers'
        own weights, which the copy does not have.

    # Raises
        ValueError: the model cannot be rebuilt from its config, or a rebuilt
            layer takes other weights than the original (e.g. a subclassed
            model, which Keras rebuilds unbuilt).
    """
    try:
        clone = type(model).from_config(_replaced(model.get_config(), replace))
    except Exception as error:  # Keras raises many types for unrebuildable models
        raise ValueError(
            f"Cannot rebuild model {model.name!r} from its config "
            f"({type(error).__name__}: {error}). Expected a functional or Sequential "
            "model; a subclassed model cannot be rebuilt with other quantizers."
        ) from None
    initial = weights or {}
    for old, new in zip(all_layers(model), all_layers(clone), strict=True):
        keys = [key for key in replace(old.name) or {} if key in QUANTIZER_KEYS]
        new.set_weights(_copied_weights(old, new, keys, initial.get(old.name)))
    return clone


def _replaced(config: Any, replace: Replacements) -> Any:
    """`config` with the quantizer entries of every layer config replaced."""
    if isinstance(config, list):
        return [_replaced(value, replace) for value in config]
    if not isinstance(config, dict):
        return config
    config = {key: _replaced(value, replace) for key, value in config.items()}
    layer = config.get("config")
    if isinstance(layer, dict) and any(key in layer for key in QUANTIZER_KEYS):
        for key, spec in (replace(layer.get("name")) or {}).items():
            if key in layer:
                layer[key] = copy.deepcopy(spec)
    return config


def _copied_weights(old, new, keys, initial) -> list[np.ndarray]:
    """`old`'s weights without its `keys` quantizers' weights, with `new`'s."""
    dropped = {id(weight) for weight in quantizer_weights(old, keys)}
    kept = [
        value
        for weight, value in zip(old.weights, old.get_weights(), strict=True)
        if id(weight) not in dropped
    ]
    added = {id(weight) for weight in quantizer_weights(new, keys)}
    if len(new.weights) - len(added) != len(kept):
        raise ValueError(
            f"Layer {old.name!r} has {len(kept)} weights to copy, but its rebuilt "
            f"copy takes {len(new.weights) - len(added)}; expected the same layer "
            "from its config. Rebuild the model as a functional or Sequential model."
        )
    values = iter(kept)
    return [
        _initial(weight, initial) if id(weight) in added else next(values)
        for weight in new.weights
    ]


def _initial(weight, value) -> np.ndarray:
    if value is None:
        return weight.numpy()
    return np.broadcast_to(value, weight.shape).astype(np.float32)


def float32_twin(model: keras.Model) -> keras.Model:
    """The same architecture and weights with every Larq quantizer set to None.

    `clone_with_quantizers` with `input_quantizer`, `kernel_quantizer`,
    `depthwise_quantizer` and `pointwise_quantizer` set to None in every layer
    config: every layer's weights (latent, i.e. real-valued) are copied, except
    the quantizers' own weights (an RSign threshold, a sharpness), which the twin
    does not have.

    # Raises
        ValueError: see `clone_with_quantizers`.
    """
    return clone_with_quantizers(model, lambda name: _NO_QUANTIZERS)


def is_plain_sign(quantizer) -> bool:
    """Whether `quantizer` is Larq's `ste_sign` (function or class)."""
    return getattr(quantizer, "__name__", type(quantizer).__name__) in _PLAIN_SIGNS


def sign_twin(model: keras.Model) -> keras.Model:
    """The same model and weights with every binarizer replaced by `ste_sign`.

    The latency baseline of an AF: LCE fuses the twin's binarizers into the
    binary convs' output thresholds, so `latency(model) / latency(twin)` is what
    the AF costs at inference. Nested models are walked too; `model` itself is
    returned when every binarizer already is `ste_sign`.
    """
    replaced = {
        layer.name: {"input_quantizer": "ste_sign"}
        for layer in all_layers(model)
        if getattr(layer, "input_quantizer", None) is not None
        and not is_plain_sign(layer.input_quantizer)
    }
    return clone_with_quantizers(model, replaced.get) if replaced else model


def convert_float32(model: keras.Model) -> bytes:
    """The model as a float32 TFLite flatbuffer (standard converter, batch size 1).

    The batch is fixed to 1 as in LCE's converter, so that a `Reshape` with a
    -1 gives the following conv a known channel count.
    """
    spec = tf.TensorSpec((1, *model.input_shape[1:]), model.inputs[0].dtype)
    function = tf.function(lambda x: model(x, training=False))
    concrete = function.get_concrete_function(spec)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    with native_output_captured():  # its MLIR op summary prints at any log level
        return converter.convert()
