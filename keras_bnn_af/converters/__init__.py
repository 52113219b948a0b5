"""Export to Larq Compute Engine TFLite and inspection of the result."""

from keras_bnn_af.converters.export import (
    ExportReport,
    FloatConv,
    FloatConvError,
    VerificationError,
    convert_float32,
    export_lce,
    find_float_convs,
    float32_twin,
    load_trained_model,
    run_dataset,
    verification_samples,
    write_report,
)
from keras_bnn_af.converters.folding import ThresholdFold, fold_thresholds, sign_twin
from keras_bnn_af.converters.ops import op_counts

__all__ = [
    "ExportReport",
    "FloatConv",
    "FloatConvError",
    "ThresholdFold",
    "VerificationError",
    "convert_float32",
    "export_lce",
    "find_float_convs",
    "float32_twin",
    "fold_thresholds",
    "load_trained_model",
    "op_counts",
    "run_dataset",
    "sign_twin",
    "verification_samples",
    "write_report",
]
