"""keras-bnn-af: binary neural networks for edge devices, built on Larq.

```python
import keras_bnn_af as bnn

splits = bnn.data.load("mnist", batch_size=128)
model = bnn.models.build("binarynet", binarizer="ste_sign")
```

Submodules and the names below load on first use, so `import keras_bnn_af` and
the pure-Python parts (`keras_bnn_af.af`, `keras_bnn_af.searchers.operators`,
`keras_bnn_af.searchers.af_tree`) do not import TensorFlow. Keras learns the
binarizers' names (for `keras.models.load_model` without `custom_objects`) when
`keras_bnn_af.quantizers` is imported, which building, training or exporting a
model does.
"""

from importlib import metadata

from keras_bnn_af._lazy import lazy_attributes

try:
    __version__ = metadata.version("keras-bnn-af")
except metadata.PackageNotFoundError:  # a source tree that is not installed
    __version__ = "unknown"

#: Public name -> (module, attribute), imported on first access.
_LAZY = {
    "DitheredSign": ("keras_bnn_af.quantizers", "DitheredSign"),
    "GAAF": ("keras_bnn_af.quantizers", "GAAF"),
    "RSign": ("keras_bnn_af.quantizers", "RSign"),
    "SelfBinarizing": ("keras_bnn_af.quantizers", "SelfBinarizing"),
    "binarizer_factory": ("keras_bnn_af.quantizers", "binarizer_factory"),
    "build_model": ("keras_bnn_af.models", "build"),
    "load_dataset": ("keras_bnn_af.data", "load"),
    "plot_binarizer": ("keras_bnn_af.plots", "plot_binarizer"),
}
_SUBMODULES = (
    "af",
    "benchmarks",
    "callbacks",
    "converters",
    "data",
    "macs",
    "models",
    "plots",
    "quantizers",
    "runs",
    "searchers",
    "training",
)

__all__ = [
    "DitheredSign",
    "GAAF",
    "RSign",
    "SelfBinarizing",
    "__version__",
    "af",
    "binarizer_factory",
    "build_model",
    "callbacks",
    "data",
    "load_dataset",
    "macs",
    "models",
    "plot_binarizer",
    "quantizers",
    "runs",
    "training",
]


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY, _SUBMODULES)
