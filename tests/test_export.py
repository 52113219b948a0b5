"""Verified LCE export: agreement, op histogram, silent float convs, sizes, CLI."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import larq as lq
import larq_compute_engine as lce
import numpy as np
import pytest

from keras_bnn_af import cli, converters, models, training
from keras_bnn_af._keras import keras, tf
from keras_bnn_af.converters import (
    ExportReport,
    FloatConvError,
    VerificationError,
    export,
    export_lce,
    find_float_convs,
)
from keras_bnn_af.testing import binary_block_net, randomize_batch_norm

FAST = {"num_samples": 64, "float_twin": False}
JSON_KEYS = {
    "top1_agreement",
    "max_abs_diff",
    "op_counts",
    "size_bytes",
    "float32_twin_size_bytes",
    "size_ratio",
    "float_convs",
    "binary_convs_expected",
    "binary_mac_share",
    "verified",
}


def tf_sign(x):
    """A binarizer LCE cannot see: `tf.sign`, not `larq.math.sign`."""
    return tf.sign(x)


def _binary_conv(name, **options):
    config = {
        "padding": "same",
        "pad_values": 1.0,
        "input_quantizer": "ste_sign",
        "kernel_quantizer": "ste_sign",
        "kernel_constraint": "weight_clip",
        "use_bias": False,
        **options,
    }
    return lq.layers.QuantConv2D(32, 3, name=name, **config)


def _float_model():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(4)(x))


# --- every binarizer family exports and agrees -------------------------------------


@pytest.mark.parametrize(
    "spec",
    ["ste_sign", "gaaf:sin_x", "rsign", "dithered_sign:design_2x2", "self_binarizing"],
)
def test_binary_block_net_exports_with_full_agreement(spec, tmp_path):
    model = binary_block_net(spec)
    path = tmp_path / "m.tflite"
    report = export_lce(model, path, **FAST)
    assert report.verified and report.mismatches == 0
    assert report.top1_agreement == 1.0
    assert report.max_abs_diff <= 1e-3
    assert report.op_counts["LceBconv2d"] == report.binary_convs_expected == 3
    assert report.float_convs == []
    if spec in ("ste_sign", "rsign", "self_binarizing"):  # fully fused sign
        assert report.elementwise_ops == {}
        assert report.op_counts["LceQuantize"] == 1  # bconvs pass bits on
    assert path.read_bytes()[4:8] == b"TFL3"
    assert report.size_bytes == path.stat().st_size
    if spec == "self_binarizing":
        # Exported as sign(x), not as the training path tanh(v x) with v = 1.
        for layer in model.layers:  # BatchNorm in inference mode even in training
            layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
        x = np.random.default_rng(3).normal(size=(4, 12, 12, 8)).astype(np.float32)
        lce_outputs = lce.testing.Interpreter(path.read_bytes()).predict(x)
        np.testing.assert_allclose(lce_outputs, model.predict(x, verbose=0), atol=1e-3)
        training_outputs = model(x, training=True).numpy()
        assert np.abs(lce_outputs - training_outputs).max() > 0.1


@pytest.fixture(scope="module")
def gaaf_report(tmp_path_factory):
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("export") / "gaaf.tflite"
    return export_lce(binary_block_net("gaaf:sin_x"), path, **FAST)


@pytest.fixture(scope="module")
def binarynet_report(tmp_path_factory):
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("export") / "binarynet.tflite"
    model = models.build("binarynet")
    return export_lce(model, path, verify_with="mnist", num_samples=32)


def test_histogram_shows_binary_ops_and_the_float_ops_an_af_leaves(gaaf_report):
    counts = gaaf_report.op_counts
    assert list(counts)[:7] == list(export.KEY_OPS)  # always present, 0 if absent
    assert counts["LceBconv2d"] == 3
    assert counts["LceQuantize"] == 3  # sin breaks bit-packed bconv -> bconv
    assert counts["LceDequantize"] == counts["DEPTHWISE_CONV_2D"] == 0
    assert counts["CONV_2D"] == counts["FULLY_CONNECTED"] == 1
    assert gaaf_report.elementwise_ops == {"SIN": 3}
    assert "| float elementwise ops | SIN 3 |" in gaaf_report.to_markdown()


def test_report_json_and_markdown(binarynet_report, tmp_path):
    data = binarynet_report.to_json()
    assert set(data) >= JSON_KEYS
    assert json.loads(json.dumps(data)) == data
    assert data["size_ratio"] == data["float32_twin_size_bytes"] / data["size_bytes"]
    assert data["float32_twin_size_bytes"] > data["size_bytes"]
    assert 0.5 < data["binary_mac_share"] <= 1.0
    converters.write_report(binarynet_report, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text()) == data
    markdown = binarynet_report.to_markdown()
    assert "| LceBconv2d | 4 |" in markdown and "| LceBMaxPool2d | 2 |" in markdown
    assert "passed on 32 samples (mnist test[:32])" in markdown


def test_binarynet_verified_on_mnist_is_10x_smaller_than_its_float32_twin(
    binarynet_report,
):
    report = binarynet_report
    print(f"binarynet: {report.size_bytes} B, twin {report.float32_twin_size_bytes} B")
    assert report.size_ratio >= 10  # measured: 64 556 B vs 1 838 144 B, 28.5x
    assert report.binary_mac_share > 0.9
    assert report.lce_binary_mac_share == report.binary_mac_share
    assert report.samples == 32 and report.samples_source == "mnist test[:32]"
    assert report.verified and report.lce_accuracy == report.keras_accuracy


def test_float32_twin_has_no_quantizers_and_the_latent_weights():
    model = binary_block_net("rsign", filters=(8, 8))
    twin = export.float32_twin(model)
    quant_layers = [layer for layer in twin.layers if hasattr(layer, "input_quantizer")]
    assert quant_layers and all(
        layer.input_quantizer is None and layer.kernel_quantizer is None
        for layer in quant_layers
    )
    original = model.get_layer(quant_layers[0].name)
    np.testing.assert_array_equal(
        quant_layers[0].get_weights()[0], original.get_weights()[0]
    )


# --- silent float convs --------------------------------------------------------------


def test_unfusable_layers_are_named_and_strict_refuses(tmp_path):
    inputs = keras.Input((8, 8, 32))
    x = keras.layers.BatchNormalization()(inputs)
    x = _binary_conv("tf_sign_conv", input_quantizer=tf_sign)(x)
    x = keras.layers.BatchNormalization()(x)
    x = _binary_conv("pad_half_conv", pad_values=0.5)(x)
    x = keras.layers.BatchNormalization()(x)
    x = _binary_conv("pad_zero_conv", pad_values=0.0)(x)  # fuses, with a correction
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(
        4, input_quantizer="ste_sign", kernel_quantizer="ste_sign"
    )(x)
    model = keras.Model(inputs, x)
    randomize_batch_norm(model)
    path = tmp_path / "m.tflite"
    with pytest.raises(FloatConvError, match="tf_sign_conv") as raised:
        export_lce(model, path, strict=True, **FAST)
    assert not path.exists()
    report = raised.value.report
    named = {conv.layer: conv for conv in report.float_convs}
    assert list(named) == ["tf_sign_conv", "pad_half_conv", "quant_dense"]
    assert "tf.Sign" in named["tf_sign_conv"].reason
    assert "lq.math.sign" in named["tf_sign_conv"].fix
    assert "pad_values=1.0" in named["pad_half_conv"].fix
    assert "1x1 QuantConv2D" in named["quant_dense"].fix
    assert report.op_counts["LceBconv2d"] == 1 and report.binary_convs_expected == 3
    assert report.lce_binary_mac_share < report.binary_mac_share
    assert report.verified  # float convs still compute the right thing
    assert "tf_sign_conv" in report.to_markdown()


@pytest.mark.parametrize(
    "options, cause",
    [
        ({"input_quantizer": "dorefa_quantizer"}, "2-bit"),
        ({"kernel_quantizer": None, "kernel_constraint": None}, "no kernel quantizer"),
        ({"groups": 2}, "16 input channels per group"),
    ],
)
def test_each_known_cause_is_diagnosed(options, cause):
    inputs = keras.Input((6, 6, 32))
    model = keras.Model(inputs, _binary_conv("conv", **options)(inputs))
    (found,) = find_float_convs(model, {"LceBconv2d": 0})
    assert found.layer == "conv" and cause in found.reason


def test_a_zero_in_the_quantized_kernel_is_diagnosed():
    inputs = keras.Input((6, 6, 32))
    layer = _binary_conv("conv", kernel_quantizer=tf_sign, kernel_constraint=None)
    model = keras.Model(inputs, layer(inputs))
    kernel = layer.get_weights()[0]
    kernel[0, 0, 0, 0] = 0.0
    layer.set_weights([kernel])
    (found,) = find_float_convs(model, {"LceBconv2d": 0})
    assert "not +-s per output channel" in found.reason


def test_an_unexplained_float_conv_is_found_by_converting_layers_alone(monkeypatch):
    monkeypatch.setattr(export, "_conv2d_cause", lambda layer: None)
    inputs = keras.Input((6, 6, 32))
    x = _binary_conv("fused")(inputs)
    model = keras.Model(inputs, _binary_conv("unfused", pad_values=0.5)(x))
    (found,) = find_float_convs(model, {"LceBconv2d": 1})
    assert found.layer == "unfused" and "on its own" in found.reason


def test_all_causes_are_diagnosed_only_when_bconvs_are_missing():
    inputs = keras.Input((6, 6, 32))
    model = keras.Model(inputs, _binary_conv("c", input_quantizer=tf_sign)(inputs))
    assert find_float_convs(model, {"LceBconv2d": 1}) == []


# --- verification ------------------------------------------------------------------


def test_a_rounding_tie_is_reported_and_tolerated(tmp_path):
    # With these weights, sample 231 of the default inputs has a binarizer input
    # of 8.9e-9 (activations of order 1): Keras and LCE (which folds the
    # BatchNorm into the threshold) binarize it differently, and the logits move
    # by 0.13. Every other sample agrees to 1e-5.
    keras.utils.set_random_seed(35)
    model = binary_block_net("ste_sign")
    report = export_lce(model, tmp_path / "m.tflite", float_twin=False)
    assert report.max_abs_diff > 0.1
    assert report.rounding_ties == [231] and report.mismatches == 0
    assert report.verified


def test_a_real_mismatch_raises_and_writes_nothing(tmp_path, monkeypatch):
    real = export._run_interpreter

    def corrupted(flatbuffer, inputs):
        outputs, interpreter = real(flatbuffer, inputs)
        return outputs + 0.01, interpreter

    monkeypatch.setattr(export, "_run_interpreter", corrupted)
    model = binary_block_net("ste_sign", filters=(32,))
    path = tmp_path / "m.tflite"
    fast = {**FAST, "num_samples": 16}
    with pytest.raises(VerificationError, match="allow_mismatch=True") as raised:
        export_lce(model, path, **fast)
    assert not path.exists() and raised.value.report.mismatches > 8
    with pytest.warns(UserWarning, match="does not match"):
        report = export_lce(model, path, allow_mismatch=True, **fast)
    assert path.exists() and not report.verified


def test_verification_samples_from_arrays_datasets_and_names():
    model = models.build("binarynet")
    inputs, labels, source = export.verification_samples(model, "mnist", num_samples=5)
    assert inputs.shape == (5, 28, 28, 1) and labels.shape == (5,)
    assert inputs.min() >= -1.0 and inputs.max() <= 1.0 and inputs.dtype == np.float32
    default, labels, _ = export.verification_samples(model, None, num_samples=3)
    assert default.shape == (3, 28, 28, 1) and labels is None
    np.testing.assert_array_equal(
        default, export.verification_samples(model, None, num_samples=3)[0]
    )
    x = np.random.default_rng(0).normal(size=(10, 28, 28, 1)).astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((x, np.zeros(10))).batch(4)
    for samples in [x, dataset, dataset.map(lambda x, y: x)]:
        inputs, _, _ = export.verification_samples(model, samples)
        np.testing.assert_array_equal(inputs, x)


def test_grouped_binary_convs_are_verified_with_the_reference_kernels(tmp_path):
    # LCE's optimized x86 kernels refuse grouped binary convs at allocation.
    inputs = keras.Input((6, 6, 64))
    model = keras.Model(inputs, _binary_conv("grouped", groups=2)(inputs))
    report = export_lce(model, tmp_path / "g.tflite", **{**FAST, "num_samples": 8})
    assert report.op_counts["LceBconv2d"] == 1 and report.float_convs == []
    assert report.interpreter == "use_reference_bconv" and report.verified


# --- bad input ---------------------------------------------------------------------


def test_refuses_what_is_not_a_keras_model(tmp_path):
    with pytest.raises(ValueError, match="needs a keras.Model, got str"):
        export_lce("model.h5", tmp_path / "m.tflite")


def test_refuses_an_existing_output_without_overwrite(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_lce(_float_model(), path)
    assert path.read_bytes() == b"keep"


def test_refuses_an_unwritable_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        export_lce(_float_model(), blocker / "sub" / "m.tflite")
    with pytest.raises(ValueError, match="not writable"):
        export_lce(_float_model(), Path("/proc/keras-bnn-af/m.tflite"))


def test_refuses_samples_of_the_wrong_shape(tmp_path):
    model = models.build("binarynet")
    samples = np.zeros((4, 28, 28), np.float32)
    with pytest.raises(ValueError, match=r"\(4, 28, 28\).*\(N, 28, 28, 1\)"):
        export_lce(model, tmp_path / "m.tflite", verify_with=samples)
    with pytest.raises(ValueError, match="Unknown dataset"):
        export_lce(model, tmp_path / "m.tflite", verify_with="mnist2")


def test_a_model_without_binary_layers_exports_with_a_warning(tmp_path):
    with pytest.warns(UserWarning, match="no binary layer"):
        report = export_lce(_float_model(), tmp_path / "m.tflite", **FAST)
    assert report.verified and report.op_counts["LceBconv2d"] == 0
    assert any("no binary layer" in message for message in report.warnings)
    assert report.binary_mac_share == 0.0


# --- the `keras-bnn-af export` command ---------------------------------------------


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "mnist"
    config = training.TrainConfig(epochs=1, max_samples=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        training.train(config, out, verbose=0)
    return out


def test_cli_exports_a_trained_run(run_folder, tmp_path):
    script = Path(sys.executable).with_name("keras-bnn-af")
    out, report_path = tmp_path / "m.tflite", tmp_path / "r.json"
    command = [str(script), "export", str(run_folder), "--out", str(out)]
    command += ["--verify-dataset", "mnist", "--report", str(report_path)]
    command += ["--latency"]
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "passed on 256 samples (mnist test[:256])" in completed.stdout
    assert "| LceBconv2d | 4 |" in completed.stdout
    report = json.loads(report_path.read_text())
    assert report["top1_agreement"] == 1.0 and report["verified"]
    assert report["size_bytes"] == out.stat().st_size
    ratio = report["latency_ms"] / report["sign_twin_latency_ms"]
    assert report["af_latency_ratio"] == pytest.approx(ratio)
    assert "x the same model with ste_sign" in completed.stdout


def _cli_error(capsys, *args) -> str:
    with pytest.raises(SystemExit) as raised:
        cli.main(["export", *map(str, args)])
    assert raised.value.code == 2
    return capsys.readouterr().err


def test_cli_bad_inputs_exit_2_with_a_message(run_folder, tmp_path, capsys):
    out = tmp_path / "m.tflite"
    error = _cli_error(capsys, tmp_path / "missing", "--out", out)
    assert "keras-bnn-af export: error: Model" in error and "does not exist" in error
    (tmp_path / "junk.h5").write_text("not a model")
    error = _cli_error(capsys, tmp_path / "junk.h5", "--out", out)
    assert "Cannot load" in error
    error = _cli_error(capsys, tmp_path, "--out", out)
    assert "neither model.h5 nor saved_model.pb" in error
    out.write_bytes(b"keep")
    error = _cli_error(capsys, run_folder, "--out", out)
    assert "already exists" in error and "--overwrite" in error
    assert out.read_bytes() == b"keep"


def test_run_dataset_reads_the_run_config(run_folder, tmp_path):
    assert converters.run_dataset(run_folder) == "mnist"
    assert converters.run_dataset(run_folder / "model.h5") is None
    assert converters.run_dataset(tmp_path) is None


def test_report_is_a_dataclass_with_derived_figures():
    report = ExportReport(
        path=Path("m.tflite"),
        top1_agreement=1.0,
        max_abs_diff=0.0,
        tolerance=1e-3,
        samples=8,
        samples_source="test",
        op_counts={"LceBconv2d": 1},
        binary_convs_expected=1,
        float_convs=[],
        binary_mac_share=1.0,
        lce_binary_mac_share=1.0,
        size_bytes=100,
        float32_twin_size_bytes=None,
    )
    assert report.size_ratio is None and report.verified
    assert report.to_json()["size_ratio"] is None
    assert report.af_latency_ratio is None
    assert report.allowed_ties == 1  # 20 % of 8 samples, rounded down
    report.rounding_ties = [3]
    assert report.verified
    report.rounding_ties = [3, 5]
    assert not report.verified
    report.rounding_ties, report.mismatches = [], 1
    assert not report.verified
