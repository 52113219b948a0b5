"""Binarizers and the specs that hand one fresh binarizer to every layer."""

from keras_bnn_af.quantizers.specs import (
    BinarizerSpec,
    available_binarizers,
    binarizer_factory,
)

__all__ = ["BinarizerSpec", "available_binarizers", "binarizer_factory"]
