"""Export to Larq Compute Engine TFLite and inspection of the result."""

from keras_bnn_af.converters.ops import op_counts

__all__ = ["op_counts"]
