"""The derived UBNAS network: shapes and layers of a few genotypes on 2-D and 1-D
inputs, and verified LCE export with every binary conv one `LceBconv2d` (including
the merged pair of dilated convs on one input)."""

from collections import Counter

import larq as lq
import numpy as np
import pytest

from keras_bnn_af.converters.export import export_lce
from keras_bnn_af.latency.graph import read_graph
from keras_bnn_af.searchers.ubnas.derived import build_derived
from keras_bnn_af.searchers.ubnas.genotype import Genotype
from keras_bnn_af.searchers.ubnas.space import OPS
from keras_bnn_af.testing import randomize_batch_norm, sample_inputs

CELLS, CHANNELS, CLASSES = 3, 8, 10

# Every op kind; dilated convs on stride-2 reduction edges (conv + subsample).
MIXED = Genotype(
    2,
    normal=(("bconv_3x3", 0), ("skip", 1), ("max_pool_3x3", 0), ("dil_bconv_5x5", 2)),
    reduce=(("skip", 0), ("dil_bconv_3x3", 1), ("avg_pool_3x3", 2), ("bconv_5x5", 0)),
)
# Branches 1 and 2 of the normal cell, and 0 and 1 of the reduction cell, apply the
# same dilated conv to the same input: derived.py merges each pair into one conv.
SHARED_DILATED = Genotype(
    2,
    normal=(
        ("dil_bconv_3x3", 0),
        ("dil_bconv_3x3", 1),
        ("dil_bconv_3x3", 1),
        ("skip", 2),
    ),
    reduce=(
        ("dil_bconv_5x5", 0),
        ("dil_bconv_5x5", 0),
        ("bconv_3x3", 1),
        ("max_pool_3x3", 2),
    ),
)
PARAMETER_FREE = Genotype(
    2,
    normal=(("skip", 0), ("max_pool_3x3", 1), ("avg_pool_3x3", 0), ("skip", 2)),
    reduce=(("max_pool_3x3", 0), ("avg_pool_3x3", 1), ("skip", 2), ("skip", 0)),
)
GENOTYPES = {"mixed": MIXED, "shared_dilated": SHARED_DILATED, "free": PARAMETER_FREE}


def _quant_convs(model):
    return [layer for layer in model.layers if isinstance(layer, lq.layers.QuantConv2D)]


def _expected_binary_convs(genotype, cells=CELLS):
    """Binary convs the derived net should hold: 2 pointwise inputs per cell, one per
    conv op (skip at stride 2 included), one per merged pair of dilated convs."""
    from keras_bnn_af.searchers.ubnas.supernet import reduction_indices

    count = 0
    for index in range(cells):
        reduction = index in reduction_indices(cells)
        pairs = genotype.reduce if reduction else genotype.normal
        count += 2
        dilated = set()
        for op, source in pairs:
            spec = OPS[op]
            stride = 2 if reduction and source < 2 else 1
            if spec.kind == "binary_conv":
                if spec.dilation > 1 and (op, source) in dilated:
                    continue  # merged with the earlier branch
                dilated.add((op, source))
                count += 1
            elif spec.kind == "skip" and stride == 2:
                count += 1
    return count


def _build(genotype, input_shape=(28, 28, 1)):
    return build_derived(
        genotype,
        input_shape=input_shape,
        num_classes=CLASSES,
        cells=CELLS,
        channels=CHANNELS,
    )


@pytest.mark.parametrize("name", list(GENOTYPES))
@pytest.mark.parametrize("input_shape", [(28, 28, 1), (40, 1)], ids=["2d", "1d"])
def test_build_derived_outputs_class_probabilities(name, input_shape):
    genotype = GENOTYPES[name]
    model = _build(genotype, input_shape)
    x = sample_inputs(model, count=3)
    y = model(x, training=False).numpy()
    assert y.shape == (3, CLASSES)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    convs = _quant_convs(model)
    assert len(convs) == _expected_binary_convs(genotype)
    for conv in convs:
        assert conv.padding == "same" and conv.pad_values == 1.0
        assert not conv.use_bias


def test_build_derived_1d_kernels_are_k_by_1():
    model = _build(MIXED, (40, 1))
    assert model.get_layer("stem").kernel_size == (3, 1)
    for conv in _quant_convs(model):
        assert conv.kernel_size[1] == 1
        assert conv.strides[1] == 1
        assert conv.dilation_rate[1] == 1
    assert any(conv.kernel_size == (5, 1) for conv in _quant_convs(model))


def test_build_derived_merges_dilated_convs_on_one_input():
    model = _build(SHARED_DILATED)
    merged = [conv for conv in _quant_convs(model) if "_b1_b2_" in conv.name]
    assert len(merged) == 1
    assert merged[0].filters == 2 * CHANNELS  # cell 0 is normal: C channels per branch
    assert merged[0].dilation_rate == (2, 2)
    merged_reduce = [conv for conv in _quant_convs(model) if "_b0_b1_" in conv.name]
    # cells 1 and 2 reduce, at 2C and 4C channels
    assert sorted(conv.filters for conv in merged_reduce) == [
        2 * 2 * CHANNELS,
        2 * 4 * CHANNELS,
    ]


# --- LCE export -------------------------------------------------------------------
# Two conversions, ~14 s each on an idle machine: LCE's converter takes ~0.25 s per
# Keras layer, and a 3-cell derived net has ~50. Together they cover every op kind,
# stride-2 dilated convs (conv + subsample), the merged dilated pairs, and 1-D input.


@pytest.mark.parametrize(
    "name, input_shape",
    [("shared_dilated", (28, 28, 1)), ("mixed", (40, 1))],
    ids=["shared_dilated-2d", "mixed-1d"],
)
def test_export_lce_fuses_every_binary_conv(tmp_path, name, input_shape):
    model = _build(GENOTYPES[name], input_shape)
    randomize_batch_norm(model)
    path = tmp_path / "m.tflite"
    report = export_lce(model, path, float32_twin_size=False, on_float_conv="raise")
    assert path.exists()
    assert not report.float_convs
    ops = Counter(op.name for op in read_graph(path).ops)
    assert ops["LceBconv2d"] == len(_quant_convs(model))
    assert ops["LceBconv2d"] == _expected_binary_convs(GENOTYPES[name])
    assert ops["CONV_2D"] == 1, ops  # the float stem only
    assert "DEPTHWISE_CONV_2D" not in ops
