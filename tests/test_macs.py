"""One binary MAC share: `metrics.json` and the export report count alike."""

import larq as lq
import pytest

from keras_bnn_af import macs, models, training
from keras_bnn_af.converters import export_lce


@pytest.mark.parametrize("spec", ["rsign", "gaaf:x + sin(scale(x))"])
def test_training_metrics_and_the_export_report_give_one_binary_mac_share(
    spec, tmp_path
):
    # These binarizers own weights (RSign's alpha, GAAF's scale), which Larq's
    # profile counts as 32-bit MACs of their conv. metrics.json used to keep them
    # (binarynet: 0.9607) while the report dropped them (0.9627), so this failed.
    model = models.build("binarynet", binarizer=spec)
    assert any(models.quantizer_weights(layer) for layer in model.layers)
    statistics = training.model_statistics(model)
    report = export_lce(
        model, tmp_path / "m.tflite", num_samples=8, float32_twin_size=False
    )
    assert statistics["binary_mac_ratio"] == round(report.binary_mac_share, 4)
    plain = training.model_statistics(models.build("binarynet"))  # ste_sign
    for key in ("binary_macs", "float_macs", "binary_mac_ratio"):
        assert statistics[key] == plain[key], key


def test_quantizer_owned_weights_are_not_counted():
    model = models.build("binarynet", binarizer="rsign")
    profile = lq.models.ModelProfile(model)
    counted = macs.layer_macs(model)
    alphas = {
        layer.name: layer.input_quantizer.alpha.shape.num_elements()
        for layer in model.layers
        if models.quantizer_weights(layer)
    }
    pixels = {
        p.name: p.output_pixels for p in profile.layer_profiles if p.name in alphas
    }
    dropped = sum(alphas[name] * pixels[name] for name in alphas)
    assert dropped > 0
    assert macs.count(counted) == profile.op_count("mac") - dropped
    assert macs.count(counted, 1) == profile.op_count("mac", 1)
    assert {m.layer for m in counted if m.precision == 1} == set(alphas)


def test_binary_share_without_given_float_layers():
    counted = [
        macs.LayerMacs("a", 1, 60),
        macs.LayerMacs("b", 1, 30),
        macs.LayerMacs("c", 32, 10),
    ]
    assert macs.count(counted) == 100 and macs.count(counted, 1) == 90
    assert macs.binary_share(counted) == 0.9
    assert macs.binary_share(counted, float_layers={"b"}) == 0.6
    assert macs.binary_share([]) == 0.0
