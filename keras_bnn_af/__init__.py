"""keras-bnn-af: binary neural networks for edge devices, built on Larq.

```python
import keras_bnn_af as bnn

splits = bnn.data.load("mnist", batch_size=128)
model = bnn.models.build("binarynet", binarizer="ste_sign")
```
"""

from importlib import metadata

from keras_bnn_af import callbacks, data, models, quantizers, training
from keras_bnn_af.data import load as load_dataset
from keras_bnn_af.models import build as build_model
from keras_bnn_af.plots import plot_binarizer
from keras_bnn_af.quantizers import (
    GAAF,
    DitheredSign,
    RSign,
    SelfBinarizing,
    binarizer_factory,
)

try:
    __version__ = metadata.version("keras-bnn-af")
except metadata.PackageNotFoundError:  # a source tree that is not installed
    __version__ = "unknown"

__all__ = [
    "DitheredSign",
    "GAAF",
    "RSign",
    "SelfBinarizing",
    "__version__",
    "binarizer_factory",
    "build_model",
    "callbacks",
    "data",
    "load_dataset",
    "models",
    "plot_binarizer",
    "quantizers",
    "training",
]
