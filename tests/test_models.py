import larq as lq
import larq_compute_engine as lce
import pytest

from keras_bnn_af import models
from keras_bnn_af._keras import keras
from keras_bnn_af.converters import op_counts

OWN_MODELS = ["binarynet", "conv1d", "vgg_small", "resnet_e18"]
FLOAT_STEM_CONVS = 1  # each reference model has exactly one real-valued conv


def _following_layer(layer):
    (node,) = layer._outbound_nodes
    return node.outbound_layer


@pytest.mark.parametrize("name", OWN_MODELS)
def test_binary_convs_are_laid_out_for_lce(name):
    model = models.build(name)
    convs = models.binary_convolutions(model)
    assert convs
    for conv in convs:
        assert conv.padding == "valid" or conv.pad_values == 1.0, conv.name
        assert conv.use_bias is False, conv.name
        assert isinstance(_following_layer(conv), keras.layers.BatchNormalization)
        assert conv.kernel_quantizer.precision == 1
    assert len({id(conv.input_quantizer) for conv in convs}) == len(convs)


@pytest.mark.parametrize(
    "name",
    # Converting ResNet-E18's 19 binary convs takes 2-3x as long as the first 7,
    # which hold every kind it has (the test below).
    [
        pytest.param(n, marks=pytest.mark.slow) if n == "resnet_e18" else n
        for n in OWN_MODELS
    ],
)
def test_lce_turns_every_binary_conv_into_a_bconv(name):
    assert_every_binary_conv_is_a_bconv(models.build(name))


def test_lce_turns_every_kind_of_resnet_e18_binary_conv_into_a_bconv():
    full = models.build("resnet_e18")
    # The stem, stage 0 and stage 1's first block, then the model's head: binary
    # convs after the float stem, after a residual Add, after a binary conv, with
    # stride 2, and the 1x1 stride-2 shortcut, each as the full model has them.
    x = full.get_layer("stage1_block0_add").output
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="classifier")(x)
    model = keras.Model(full.input, outputs)
    convs = models.binary_convolutions(model)
    assert len(convs) == 7
    assert [(c.kernel_size, c.strides) for c in convs].count(((1, 1), (2, 2))) == 1
    assert [c.strides for c in convs].count((2, 2)) == 2
    assert_every_binary_conv_is_a_bconv(model)


def assert_every_binary_conv_is_a_bconv(model: keras.Model) -> None:
    counts = op_counts(lce.convert_keras_model(model))
    assert counts["LceBconv2d"] == len(models.binary_convolutions(model))
    assert counts["CONV_2D"] == FLOAT_STEM_CONVS
    assert counts["FULLY_CONNECTED"] <= 1  # only a real-valued classifier head


def test_binarynet_classifier_is_binary_1x1_convs_not_quant_dense():
    model = models.build("binarynet")
    assert not [x for x in model.layers if isinstance(x, lq.layers.QuantDense)]
    classifier = [
        c for c in models.binary_convolutions(model) if c.kernel_size == (1, 1)
    ]
    assert [c.filters for c in classifier] == [128, 10]


def test_input_shape_and_classes_can_be_changed():
    model = models.build("vgg_small", input_shape=(16, 16, 1), num_classes=4)
    assert model.input_shape == (None, 16, 16, 1)
    assert model.output_shape == (None, 4)


def test_resnet_e18_has_gaaf_proxy_structure():
    model = models.build("resnet_e18")
    convs = models.binary_convolutions(model)
    # 4 stages x 2 blocks x 2 convs, plus 3 binary 1x1 stride-2 shortcuts.
    assert len(convs) == 19
    shortcuts = [c for c in convs if c.kernel_size == (1, 1)]
    assert [(c.filters, c.strides) for c in shortcuts] == [
        (128, (2, 2)),
        (256, (2, 2)),
        (512, (2, 2)),
    ]
    assert model.get_layer("stem_norm").center is False


@pytest.mark.parametrize("name", ["quicknet_small"])
def test_larq_zoo_quicknet_builds_offline(name, no_network):
    model = models.build(name, input_shape=(32, 32, 3), num_classes=10)
    assert model.output_shape == (None, 10)
    assert len(models.binary_convolutions(model)) > 10


def test_larq_zoo_models_refuse_another_binarizer():
    with pytest.raises(ValueError, match="binarizer=None") as error:
        models.build("quicknet", binarizer="approx_sign")
    assert "'approx_sign'" in str(error.value)


def test_unknown_model_names_the_valid_ones():
    with pytest.raises(ValueError, match="Unknown model 'resnet18'") as error:
        models.build("resnet18")
    for name in models.available_models():
        assert repr(name) in str(error.value)
