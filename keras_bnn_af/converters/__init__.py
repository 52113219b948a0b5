"""Export to Larq Compute Engine TFLite and inspection of the result.

| module | what |
|---|---|
| `export` | `export_lce`: convert, verify, report, write |
| `report` | `ExportReport`, its JSON and markdown, `write_report` |
| `verify` | verification samples, interpreter run, comparison |
| `ties` | rounding ties, explained by flipped re-runs (`explain_ties`) |
| `diagnose` | binary layers LCE left in float (`find_float_convs`) |
| `twins` | `clone_with_quantizers`, `float32_twin`, `sign_twin`, `convert_float32` |
| `folding` | `fold_thresholds` and `fold_batch_norm_sign`, on one BatchNorm reader |
| `ops` | `op_counts` of a flatbuffer |

`load_trained_model` and `run_dataset` live in `keras_bnn_af.runs` and are
re-exported here. Names load on first use (see `keras_bnn_af._lazy`), because
`keras_bnn_af.quantizers` re-exports `fold_batch_norm_sign` from `folding`.
"""

from keras_bnn_af._lazy import lazy_attributes

_PACKAGE = "keras_bnn_af.converters"
_MODULES = {
    f"{_PACKAGE}.export": ["export_lce"],
    f"{_PACKAGE}.report": ["ExportReport", "write_report"],
    f"{_PACKAGE}.verify": ["VerificationError", "verification_samples"],
    f"{_PACKAGE}.ties": ["Tie", "TiedSample", "explain_ties"],
    f"{_PACKAGE}.diagnose": ["FloatConv", "FloatConvError", "find_float_convs"],
    f"{_PACKAGE}.twins": [
        "clone_with_quantizers",
        "convert_float32",
        "float32_twin",
        "sign_twin",
    ],
    f"{_PACKAGE}.folding.thresholds": ["ThresholdFold", "fold_thresholds"],
    f"{_PACKAGE}.folding.batch_norm": ["FoldedSign", "fold_batch_norm_sign"],
    f"{_PACKAGE}.ops": ["op_counts"],
    "keras_bnn_af.runs": ["load_trained_model", "run_dataset"],
}
#: Public name -> (module, attribute), imported on first access.
_LAZY = {name: (module, name) for module, names in _MODULES.items() for name in names}
_SUBMODULES = (
    "diagnose",
    "export",
    "folding",
    "ops",
    "report",
    "ties",
    "twins",
    "verify",
)

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY, _SUBMODULES)
