"""Binarizer specs.

A quantizer that owns weights (a learnable threshold, say) belongs to exactly one
layer: Larq builds it on the first input it sees, so sharing one instance between
two layers either fails on a shape mismatch or silently ties their parameters.
Model builders therefore never take quantizer *instances*; they take a spec and
call `binarizer_factory(spec)()` once per layer.

A spec is one of

- a registered alias, e.g. `"ste_sign"` or `"rsign"`, or an alias with its main
  argument after a colon, e.g. `"gaaf:sin_x"` or `"dithered_sign:bayer4"`;
- a Keras config dict, e.g. `{"class_name": "SteSign", "config": {"clip_value": 1.25}}`;
- a zero-argument factory, e.g. `lambda: lq.quantizers.SteSign(clip_value=1.25)` or
  the class `lq.quantizers.ApproxSign`;
- a stateless quantizer function of one tensor, e.g. `lq.quantizers.ste_sign`,
  which is shared as is;
- a quantizer instance, which is cloned through its config for every layer.
"""

import copy
import inspect
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import larq as lq

from keras_bnn_af._keras import keras

BinarizerSpec = str | Mapping[str, Any] | Callable[..., Any]

_SPEC_HELP = (
    "a registered alias such as 'ste_sign', a config dict such as "
    "{'class_name': 'SteSign', 'config': {'clip_value': 1.25}}, "
    "or a zero-argument factory such as `lambda: lq.quantizers.SteSign()`"
)


def available_binarizers() -> list[str]:
    """The snake_case aliases of every registered Larq quantizer class."""
    return sorted(
        name
        for name, obj in keras.utils.get_custom_objects().items()
        if name.islower()
        and isinstance(obj, type)
        and issubclass(obj, lq.quantizers.Quantizer)
    )


def binarizer_factory(spec: BinarizerSpec) -> Callable[[], Any]:
    """Turns a binarizer spec into a factory that makes one quantizer per call.

    # Arguments
        spec: see the module docstring.

    # Returns
        A zero-argument callable. Each call returns a new quantizer instance
        (or the same stateless quantizer function).

    # Raises
        ValueError: if `spec` is of none of the accepted forms, names an unknown
            alias, or its config cannot be deserialized.
    """
    if isinstance(spec, str) and ":" in spec:
        cls, config = _expand_argument(spec)
        cls(**config)  # a bad argument fails here, with its own message
        return lambda: cls(**config)
    if isinstance(spec, str):
        _deserialize(spec)
        return lambda: lq.quantizers.get(spec)
    if isinstance(spec, Mapping):
        config = copy.deepcopy(dict(spec))
        _deserialize(config)
        return lambda: _deserialize(copy.deepcopy(config))
    if isinstance(spec, keras.layers.Layer):
        return _cloner(spec)
    if isinstance(spec, type) or (callable(spec) and _takes_no_arguments(spec)):
        return _checked_factory(spec)
    if callable(spec):
        return lambda: spec
    raise ValueError(
        f"Cannot use {spec!r} (type {type(spec).__name__}) as a binarizer spec. "
        f"Expected {_SPEC_HELP}. Pass one of those instead."
    )


def _expand_argument(spec: str) -> tuple[type, dict]:
    """`"gaaf:sin_x"` -> `(GAAF, {"af": "sin_x"})`."""
    from keras_bnn_af.quantizers.base import BINARIZERS

    alias, argument = spec.split(":", 1)
    takes_argument = sorted(a for a, c in BINARIZERS.items() if c.spec_argument)
    cls = BINARIZERS.get(alias)
    if cls is None or not cls.spec_argument:
        raise ValueError(
            f"Unknown binarizer {spec!r}: {alias!r} does not take a ':' argument. "
            f"Expected '<alias>:<argument>' with one of {', '.join(takes_argument)} "
            "(e.g. 'gaaf:sin_x', 'dithered_sign:bayer4'), or a plain alias."
        )
    return cls, {cls.spec_argument: argument}


def _deserialize(identifier: str | dict) -> Any:
    try:
        quantizer = lq.quantizers.get(identifier)
    except ValueError:  # Keras: "Unknown quantization function ..."
        raise ValueError(
            f"Unknown binarizer {identifier!r}. Expected {_SPEC_HELP}; "
            f"registered aliases: {', '.join(available_binarizers())}. Fix the "
            "spelling, or import the module that registers your quantizer first."
        ) from None
    except (TypeError, KeyError) as error:  # a known class with a bad config
        raise ValueError(
            f"Cannot build binarizer {identifier!r}: {type(error).__name__}: {error}. "
            f"Expected {_SPEC_HELP}; "
            f"registered aliases: {', '.join(available_binarizers())}. Fix the "
            "spelling, or import the module that registers your quantizer first."
        ) from None
    if not isinstance(quantizer, lq.quantizers.Quantizer):
        raise ValueError(
            f"Binarizer spec {identifier!r} resolves to {type(quantizer).__name__}, "
            f"which is not a Larq quantizer. Expected {_SPEC_HELP}; registered "
            f"aliases: {', '.join(available_binarizers())}."
        )
    return quantizer


def _cloner(instance: keras.layers.Layer) -> Callable[[], Any]:
    config = {**instance.get_config(), "name": None}
    cls = type(instance)
    return lambda: cls.from_config(copy.deepcopy(config))


def _takes_no_arguments(function: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return not any(
        p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        for p in parameters
    )


def _checked_factory(factory: Callable[[], Any]) -> Callable[[], Any]:
    made: weakref.WeakSet = weakref.WeakSet()

    def make() -> Any:
        quantizer = factory()
        if not callable(quantizer):
            raise ValueError(
                f"Binarizer factory {factory!r} returned {quantizer!r}, which is not "
                "a quantizer. Expected the factory to return a new Larq quantizer "
                "(e.g. `lq.quantizers.SteSign()`) on every call."
            )
        if isinstance(quantizer, keras.layers.Layer):
            if quantizer in made:
                raise ValueError(
                    f"Binarizer factory {factory!r} returned the same instance "
                    f"{quantizer.name!r} twice. A quantizer instance belongs to one "
                    "layer; make the factory create a new quantizer on every call."
                )
            made.add(quantizer)
        return quantizer

    make()  # fail at spec time, not deep inside model building
    return make
