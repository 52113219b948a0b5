"""Groundwork for a per-op latency model of LCE-converted binary networks.

`read_graph` reads a `.tflite` flatbuffer into `Op`s; `op_features` and
`graph_features` turn them into the numeric work counts named in `FEATURES`.
Neither imports TensorFlow.
"""

from keras_bnn_af.latency.features import FEATURES, graph_features, op_features
from keras_bnn_af.latency.graph import Graph, Op, TensorInfo, read_graph

__all__ = [
    "FEATURES",
    "Graph",
    "Op",
    "TensorInfo",
    "graph_features",
    "op_features",
    "read_graph",
]
