"""Deprecated path: use `keras_bnn_af.converters.folding` (same objects, kept here).

`fold_batch_norm_sign` and `FoldedSign` fold an inference-mode BatchNorm and the
sign after it into one exact comparison per channel; they stay importable from
here and from `keras_bnn_af.quantizers`.
"""

from keras_bnn_af.converters.folding.batch_norm import FoldedSign, fold_batch_norm_sign

__all__ = ["FoldedSign", "fold_batch_norm_sign"]
