"""Latency of LCE binary networks per device, predicted from the converted graph.

| module | what |
|---|---|
| `graph` | `read_graph`: a `.tflite` as `Op`s, read with the TFLite schema |
| `features` | `op_features`, `graph_features`: each op's work (`FEATURES`) |
| `model` | `LatencyModel`: fit, calibrate, predict, explain, save / load |
| `corpus` | random BNNs to fit and test a profile on (needs TensorFlow) |

```python
from keras_bnn_af.latency import LatencyModel
LatencyModel.load("rpi4b").predict("binarynet.tflite", threads=4)  # ms
```

Reading a graph and predicting from a `.tflite` file do not import TensorFlow.
"""

from keras_bnn_af.latency.features import FEATURES, graph_features, op_features
from keras_bnn_af.latency.graph import Graph, Op, TensorInfo, read_graph
from keras_bnn_af.latency.model import (
    LatencyModel,
    LatencySample,
    LatencyWarning,
    OpCost,
    profile_names,
    samples_from_records,
)

__all__ = [
    "FEATURES",
    "Graph",
    "LatencyModel",
    "LatencySample",
    "LatencyWarning",
    "Op",
    "OpCost",
    "TensorInfo",
    "graph_features",
    "op_features",
    "profile_names",
    "read_graph",
    "samples_from_records",
]
