"""The base class and registration of keras-bnn-af's binarizers.

Every binarizer here is a `larq.quantizers.Quantizer` with `precision = 1` whose
forward pass ends in `larq.math.sign` (so Larq Compute Engine binarizes it), and
is registered under its class name and a snake_case alias, so that
`input_quantizer="rsign"`, config dicts, `.h5` and SavedModel reloading work
after `import keras_bnn_af`, with no `custom_objects`.
"""

import weakref
from collections.abc import Callable

import larq as lq

from keras_bnn_af._keras import current_layer

#: alias -> class of every keras-bnn-af binarizer, filled by `register`.
BINARIZERS: dict[str, type] = {}


def register(alias: str, *, argument: str | None = None) -> Callable[[type], type]:
    """Class decorator: registers a binarizer under its class name and `alias`.

    # Arguments
        alias: snake_case name, e.g. `"rsign"`.
        argument: constructor argument that a spec suffix fills, so that the
            spec `"gaaf:sin_x"` means `GAAF(af="sin_x")`.
    """

    def decorate(cls: type) -> type:
        cls = lq.utils.register_alias(alias)(lq.utils.register_keras_custom_object(cls))
        cls.alias = alias
        cls.spec_argument = argument
        BINARIZERS[alias] = cls
        return cls

    return decorate


class BinaryQuantizer(lq.quantizers._BaseQuantizer):
    """Base of keras-bnn-af's binarizers: 1-bit, and owned by one layer.

    A binarizer with weights (a learnable threshold, say) is built on the first
    input it sees. Called by a second layer it would either fail on a shape
    mismatch or silently tie both layers' parameters, so the second layer's call
    raises a `ValueError` instead. Give every layer its own instance, e.g. a
    string alias or config dict (Larq makes a new instance per layer), or
    `keras_bnn_af.quantizers.binarizer_factory(spec)()`.
    """

    precision = 1

    @property
    def non_trainable_weights(self):
        # Larq's base returns [] here, to hide its flip-ratio metric's state; that
        # would drop a sharpness, or a frozen layer's thresholds, from
        # `layer.weights` and from saved files. The metric's variables are not in
        # these lists.
        if self.trainable:
            return list(self._non_trainable_weights)
        return self._trainable_weights + self._non_trainable_weights

    def __call__(self, *args, **kwargs):
        self._check_owner(current_layer())
        return super().__call__(*args, **kwargs)

    def _check_owner(self, layer) -> None:
        if layer is None or layer is self:
            return  # called directly, outside any layer
        owner = getattr(self, "_keras_bnn_af_owner", None)
        if owner is None or owner() is None:
            self._keras_bnn_af_owner = weakref.ref(layer)
        elif owner() is not layer:
            raise ValueError(
                f"Binarizer {self.name!r} ({type(self).__name__}) is already used by "
                f"layer {owner().name!r} and was now called by layer {layer.name!r}. "
                "A binarizer instance belongs to one layer (it would tie or break "
                "their parameters). Pass each layer its own instance, e.g. the "
                f"alias {type(self).alias!r} or a config dict instead of an instance."
            )
