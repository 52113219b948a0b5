"""`op_features` and `graph_features`: hand-computed work of binary and float
convs, bit-packed and float outputs, pooling, a GAAF `sin`, data movement,
and unknown ops."""

import larq as lq
import larq_compute_engine as lce
import pytest

from keras_bnn_af._keras import keras
from keras_bnn_af.latency import (
    FEATURES,
    Graph,
    Op,
    TensorInfo,
    graph_features,
    op_features,
    read_graph,
)
from keras_bnn_af.latency.features import (
    ELEMENTWISE_OPS,
    KNOWN_OPS,
    op_breakdown,
)
from keras_bnn_af.models import binary_conv2d
from keras_bnn_af.quantizers import binarizer_factory


def _binary_conv(filters, kernel_size=3, *, quantizer="ste_sign", **options):
    return binary_conv2d(filters, kernel_size, quantizer, **options)


def _convert(inputs, outputs):
    return read_graph(lce.convert_keras_model(keras.Model(inputs, outputs)))


@pytest.fixture(scope="module")
def binary_graph():
    """bconv A 3x3 (16->32) -> max pool -> bconv B 3x3/2 (32->64) -> BN ->
    bconv C 3x3, 2 groups (64->64) -> BN -> bconv D 1x1 (64->32) -> BN ->
    global average -> dense 10, on 8x8 inputs."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 16))
    x = _binary_conv(32)(inputs)
    x = keras.layers.MaxPool2D(2)(x)
    x = _binary_conv(64, strides=2)(x)
    x = keras.layers.BatchNormalization()(x)
    x = _binary_conv(64, groups=2)(x)
    x = keras.layers.BatchNormalization()(x)
    x = _binary_conv(32, kernel_size=1)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return _convert(inputs, keras.layers.Dense(10)(x))


@pytest.fixture(scope="module")
def float_graph():
    """conv 3x3 (3->16) -> depthwise 3x3 -> GAAF sin_x bconv 3x3 (16->32) -> BN
    -> max pool -> flatten -> binary dense 10 -> softmax, on 8x8 inputs."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(16, 3, padding="same")(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = _binary_conv(32, quantizer=binarizer_factory("gaaf:sin_x")())(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.MaxPool2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(
        10, input_quantizer="ste_sign", kernel_quantizer="ste_sign"
    )(x)
    return _convert(inputs, keras.layers.Softmax()(x))


def test_binary_chain_features_per_op(binary_graph):
    assert op_breakdown(binary_graph) == [
        (0, "LceQuantize", {"quantize_count": 1, "quantize_kelems": 8 * 8 * 16 / 1e3}),
        (
            1,
            "LceBconv2d",
            {
                "bconv_count": 1,
                # 16 input channels fill one 32-bit word: they cost 32.
                "bconv_macs": 8 * 8 * 32 * 3 * 3 * 32 / 1e6,
                "bconv_out_packed_kelems": 8 * 8 * 32 / 1e3,
            },
        ),
        (2, "LceBMaxPool2d", {"pool_count": 1, "bmaxpool_kwords": 4 * 4 * 1 * 4 / 1e3}),
        (
            3,
            "LceBconv2d",
            {
                "bconv_count": 1,
                "bconv_macs": 2 * 2 * 64 * 3 * 3 * 32 / 1e6,
                "bconv_out_packed_kelems": 2 * 2 * 64 / 1e3,
            },
        ),
        (
            4,
            "LceBconv2d",
            {
                "bconv_count": 1,
                "bconv_macs": 2 * 2 * 64 * 3 * 3 * 64 / 2 / 1e6,
                "bconv_out_packed_kelems": 2 * 2 * 64 / 1e3,
            },
        ),
        (
            5,
            "LceBconv2d",
            {
                "bconv_count": 1,
                "bconv_macs_1x1": 2 * 2 * 32 * 1 * 1 * 64 / 1e6,
                "bconv_out_float_kelems": 2 * 2 * 32 / 1e3,
            },
        ),
        (6, "MEAN", {"movement_count": 1, "movement_kelems": 2 * 2 * 32 / 1e3}),
        (7, "FULLY_CONNECTED", {"float_linear_count": 1, "dense_macs": 32 * 10 / 1e6}),
    ]


def test_grouped_bconv_filter_packs_one_group_of_inputs(binary_graph):
    grouped = binary_graph.ops[4]
    assert grouped.options["channels_in"] == 64
    assert grouped.inputs[1].shape == (64, 3, 3, 1)  # 32 inputs per group: 1 word


def test_float_ops_and_gaaf_sin_features_per_op(float_graph):
    names = [name for _, name, _ in op_breakdown(float_graph)]
    assert names == [
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "SIN",
        "LceQuantize",
        "LceBconv2d",
        "MAX_POOL_2D",
        "RESHAPE",
        "LceQuantize",
        "LceDequantize",
        "FULLY_CONNECTED",
        "SOFTMAX",
    ]
    features = [f for _, _, f in op_breakdown(float_graph)]
    assert features[0] == {"float_linear_count": 1, "conv_macs": 8 * 8 * 16 * 27 / 1e6}
    assert features[1] == {
        "float_linear_count": 1,
        "depthwise_macs": 8 * 8 * 16 * 9 / 1e6,
    }
    assert features[2] == {"elementwise_count": 1, "elementwise_sin_kelems": 1.024}
    assert features[4]["bconv_macs"] == 8 * 8 * 32 * 3 * 3 * 32 / 1e6  # 16 padded
    assert features[4]["bconv_out_float_kelems"] == 8 * 8 * 32 / 1e3
    assert features[5] == {"pool_count": 1, "pool_kelems": 4 * 4 * 32 * 4 / 1e3}
    assert features[8] == {"dequantize_count": 1, "dequantize_kelems": 0.512}
    assert features[9] == {"float_linear_count": 1, "dense_macs": 512 * 10 / 1e6}


def test_graph_features_sum_the_ops_plus_one_graph(float_graph):
    features = graph_features(float_graph)
    assert features["graph_count"] == 1
    assert features["float_linear_count"] == 3
    assert features["quantize_count"] == 2
    assert features["quantize_kelems"] == pytest.approx(1.024 + 0.512)
    assert features["movement_count"] == 2  # RESHAPE, SOFTMAX
    assert features["movement_kelems"] == pytest.approx(0.512 + 0.010)
    assert set(features) <= set(FEATURES)
    assert all(value > 0 for value in features.values())


def test_stride_two_divides_the_macs_by_four(binary_graph):
    # bconv B reads 4x4 positions and writes 2x2: M = 2*2*64*(3*3*32).
    strided = op_features(binary_graph.ops[3])
    assert strided["bconv_macs"] * 4 == 4 * 4 * 64 * 3 * 3 * 32 / 1e6


def test_features_are_a_fixed_documented_list():
    assert len(FEATURES) == len(set(FEATURES))
    assert 25 <= len(FEATURES) <= 45
    for kind in set(ELEMENTWISE_OPS.values()):
        assert f"elementwise_{kind}_kelems" in FEATURES
    assert set(ELEMENTWISE_OPS) <= set(KNOWN_OPS)


def _tensor(shape):
    return TensorInfo("t", shape, "float32", False)


def test_elementwise_variants_share_one_feature():
    x = _tensor((1, 4, 4, 8))
    relu6 = op_features(Op("RELU6", (x,), (x,)))
    greater = op_features(Op("GREATER", (x, x), (x,)))
    assert relu6 == {"elementwise_count": 1, "elementwise_relu_kelems": 0.128}
    assert greater == {"elementwise_count": 1, "elementwise_compare_kelems": 0.128}


def test_an_unknown_op_is_an_error_naming_op_position_and_fix(binary_graph):
    x = _tensor((1, 4, 4, 8))
    gelu = Op("GELU", (x,), (x,))
    graph = Graph(ops=(*binary_graph.ops[:2], gelu), inputs=(), outputs=())
    with pytest.raises(ValueError) as error:
        graph_features(graph)
    message = str(error.value)
    assert message.startswith("op 2 of the model is 'GELU'")
    assert "LceBconv2d" in message and "SIN" in message  # the supported names
    assert "cannot be predicted" in message and "open an issue" in message
    with pytest.raises(ValueError, match="an op is 'GELU'"):
        op_features(gelu)
