"""Binarizers and the specs that hand one fresh binarizer to every layer.

Importing this package registers every binarizer under its class name and alias
(`"gaaf"`, `"dithered_sign"`, `"rsign"`, `"self_binarizing"`), so aliases, config
dicts and saved models work wherever Larq accepts a quantizer.
"""

from keras_bnn_af.quantizers import af
from keras_bnn_af.quantizers.base import BINARIZERS, BinaryQuantizer
from keras_bnn_af.quantizers.batch_norm import FoldedSign, fold_batch_norm_sign
from keras_bnn_af.quantizers.dithered_sign import (
    DitheredSign,
    bayer_matrix,
    design_kernel,
    threshold_kernel,
)
from keras_bnn_af.quantizers.gaaf import GAAF
from keras_bnn_af.quantizers.rsign import RSign
from keras_bnn_af.quantizers.self_binarizing import SelfBinarizing
from keras_bnn_af.quantizers.specs import (
    BinarizerSpec,
    available_binarizers,
    binarizer_factory,
)

__all__ = [
    "BINARIZERS",
    "BinarizerSpec",
    "BinaryQuantizer",
    "DitheredSign",
    "FoldedSign",
    "GAAF",
    "RSign",
    "SelfBinarizing",
    "af",
    "available_binarizers",
    "bayer_matrix",
    "binarizer_factory",
    "design_kernel",
    "fold_batch_norm_sign",
    "threshold_kernel",
]
