"""`read_graph`: op names, tensors and options of an LCE flatbuffer, read with
the TFLite schema and without importing TensorFlow."""

import subprocess
import sys

import larq_compute_engine as lce
import pytest

from keras_bnn_af._keras import keras
from keras_bnn_af.latency import Graph, TensorInfo, read_graph
from keras_bnn_af.models import binary_conv2d


def _binary_conv(filters, kernel_size=3, strides=1):
    return binary_conv2d(filters, kernel_size, "ste_sign", strides=strides)


@pytest.fixture(scope="module")
def flatbuffer():
    """float conv -> bconv 3x3 -> bconv 3x3/2 -> BN -> bconv 1x1 -> BN -> pool
    -> global average -> dense."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = _binary_conv(32)(x)
    x = _binary_conv(40, strides=2)(x)
    x = keras.layers.BatchNormalization()(x)
    x = _binary_conv(64, kernel_size=1)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.MaxPool2D(2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10)(x)
    return lce.convert_keras_model(keras.Model(inputs, outputs))


@pytest.fixture(scope="module")
def graph(flatbuffer):
    return read_graph(flatbuffer)


def test_ops_are_named_by_builtin_name_or_custom_code_in_order(graph):
    assert [op.name for op in graph.ops] == [
        "CONV_2D",
        "LceQuantize",
        "LceBconv2d",
        "LceBconv2d",
        "LceBconv2d",
        "MAX_POOL_2D",
        "MEAN",
        "FULLY_CONNECTED",
    ]


def test_graph_inputs_and_outputs(graph):
    (image,) = graph.inputs
    assert image == TensorInfo(image.name, (1, 8, 8, 3), "float32", False)
    assert image.name.startswith("serving_default_")
    assert [(t.shape, t.dtype) for t in graph.outputs] == [((1, 10), "float32")]


def test_bconv_custom_options_are_the_flexbuffer_map(graph):
    first, second, pointwise = graph.ops[2:5]
    assert first.options == {
        "channels_in": 16,
        "dilation_height_factor": 1,
        "dilation_width_factor": 1,
        "fused_activation_function": "NONE",
        "pad_values": 1,
        "padding": "SAME",
        "stride_height": 1,
        "stride_width": 1,
    }
    assert (second.options["stride_height"], second.options["stride_width"]) == (2, 2)
    assert pointwise.options["channels_in"] == 40


def test_bconv_filters_are_ohwi_with_input_channels_bit_packed(graph):
    first, second, pointwise = graph.ops[2:5]
    assert first.inputs[1].shape == (32, 3, 3, 1)  # ceil(16 / 32) words
    assert second.inputs[1].shape == (40, 3, 3, 1)
    assert pointwise.inputs[1].shape == (64, 1, 1, 2)  # ceil(40 / 32) words
    assert all(
        op.inputs[1].dtype == "int32" and op.inputs[1].is_constant
        for op in graph.ops[2:5]
    )


def test_bconv_output_is_bit_packed_when_a_binary_conv_reads_it(graph):
    first, second, pointwise = graph.ops[2:5]
    # Bit-packed: thresholds (input 4) replace multiplier and bias (None).
    assert first.outputs[0].shape == (1, 8, 8, 1) and first.outputs[0].dtype == "int32"
    assert first.inputs[2:4] == (None, None)
    assert first.inputs[4].shape == (32,) and first.inputs[4].dtype == "int32"
    assert second.outputs[0].shape == (1, 4, 4, 2)  # ceil(40 / 32) words
    # Float: the BatchNorm before the float max pool becomes multiplier and bias.
    assert pointwise.outputs[0].shape == (1, 4, 4, 64)
    assert pointwise.outputs[0].dtype == "float32"
    assert [t.dtype for t in pointwise.inputs[2:4]] == ["float32", "float32"]
    assert pointwise.inputs[4] is None


def test_builtin_options_come_from_the_schema_options_tables(graph):
    conv, pool, dense = graph.ops[0], graph.ops[5], graph.ops[7]
    assert {k: conv.options[k] for k in ("stride_h", "stride_w", "padding")} == {
        "stride_h": 1,
        "stride_w": 1,
        "padding": "SAME",
    }
    assert conv.options["fused_activation_function"] == "RELU"
    assert conv.options["dilation_h_factor"] == conv.options["dilation_w_factor"] == 1
    assert pool.options["filter_height"] == pool.options["filter_width"] == 2
    assert pool.options["padding"] == "VALID"
    assert dense.options["fused_activation_function"] == "NONE"
    assert dense.inputs[2] is None  # no bias: the optional input is -1


def test_constant_tensors_have_buffers(graph):
    conv = graph.ops[0]
    assert [t.is_constant for t in conv.inputs] == [False, True, True]
    assert conv.inputs[1] == TensorInfo(
        conv.inputs[1].name, (16, 3, 3, 3), "float32", True
    )
    assert conv.inputs[1].size == 16 * 3 * 3 * 3


def test_reads_a_path_like_its_bytes(flatbuffer, graph, tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(flatbuffer)
    assert read_graph(path) == graph == read_graph(str(path))
    assert isinstance(graph, Graph)


def test_bytes_that_are_not_tflite_are_a_value_error():
    with pytest.raises(ValueError) as error:
        read_graph(b"\x00\x00\x00\x00ONNX and more")
    message = str(error.value)
    assert "not a TFLite flatbuffer" in message and "'TFL3'" in message
    assert "b'ONNX'" in message and "Pass a .tflite file" in message


def test_a_missing_file_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_graph(tmp_path / "missing.tflite")


def test_reading_and_featurizing_do_not_import_tensorflow(flatbuffer, tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(flatbuffer)
    program = (
        "import sys\n"
        "import keras_bnn_af.latency as latency\n"
        f"features = latency.graph_features(latency.read_graph({str(path)!r}))\n"
        "print(features['bconv_count'], 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["3.0", "False"]
