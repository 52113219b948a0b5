"""`export_lce`: every binarizer family exports and agrees, the options, the
latency callable, bad arguments, and the `keras-bnn-af export` command."""

import json
import os
import subprocess
import sys
from pathlib import Path

import larq as lq
import larq_compute_engine as lce
import numpy as np
import pytest

from keras_bnn_af import cli, converters
from keras_bnn_af._keras import keras
from keras_bnn_af.converters import FloatConvError, export_lce, op_counts
from keras_bnn_af.testing import binary_block_net, randomize_batch_norm

FAST = {"num_samples": 64, "float32_twin_size": False}


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
    assert report.float_convs == [] and report.warnings == []
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


# --- binary layers LCE leaves in float: on_float_conv ------------------------------


@pytest.fixture
def unfusable_model(binary_conv, tf_sign):
    inputs = keras.Input((8, 8, 32))
    x = keras.layers.BatchNormalization()(inputs)
    x = binary_conv("tf_sign_conv", input_quantizer=tf_sign)(x)
    x = keras.layers.BatchNormalization()(x)
    x = binary_conv("pad_half_conv", pad_values=0.5)(x)
    x = keras.layers.BatchNormalization()(x)
    x = binary_conv("pad_zero_conv", pad_values=0.0)(x)  # fuses, with a correction
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(
        4, input_quantizer="ste_sign", kernel_quantizer="ste_sign"
    )(x)
    model = keras.Model(inputs, x)
    randomize_batch_norm(model)
    return model


def test_unfusable_layers_are_named_and_on_float_conv_raise_refuses(
    unfusable_model, tmp_path
):
    path = tmp_path / "m.tflite"
    with pytest.raises(FloatConvError, match="tf_sign_conv") as raised:
        export_lce(unfusable_model, path, on_float_conv="raise", **FAST)
    assert not path.exists()
    assert "on_float_conv='warn'" in str(raised.value)
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


def test_on_float_conv_warn_writes_the_file_and_warns(unfusable_model, tmp_path):
    path = tmp_path / "m.tflite"
    with pytest.warns(UserWarning, match="3 binary layer.*tf_sign_conv"):
        report = export_lce(unfusable_model, path, **FAST)  # "warn" is the default
    assert path.exists() and len(report.float_convs) == 3
    assert any("on_float_conv='raise'" in message for message in report.warnings)


# --- options -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "option, value, expected, hint",
    [
        (
            "on_float_conv",
            "rase",
            "'warn' (warn, and write the file) or 'raise'",
            "raise",
        ),
        ("on_float_conv", True, "'warn' (warn, and write the file) or 'raise'", None),
        ("on_mismatch", "warning", "'raise' (raise VerificationError", "warn"),
        ("on_mismatch", None, "'raise' (raise VerificationError", None),
    ],
)
def test_a_bad_option_value_is_named_with_the_choices_and_the_fix(
    option, value, expected, hint, tmp_path, monkeypatch
):
    monkeypatch.setattr(lce, "convert_keras_model", None)  # must not get that far
    path = tmp_path / "m.tflite"
    with pytest.raises(ValueError) as raised:
        export_lce(_float_model(), path, **{option: value})
    message = str(raised.value)
    assert f"{option}={value!r} is not an option" in message
    assert expected in message
    assert f"Pass e.g. {option}=" in message
    assert (f"Did you mean {hint!r}?" in message) == (hint is not None)
    assert not path.exists()


def test_latency_must_be_a_callable(tmp_path):
    with pytest.raises(ValueError, match=r"got True.*latency=keras_bnn_af\.bench"):
        export_lce(_float_model(), tmp_path / "m.tflite", latency=True)


def test_latency_times_the_file_against_its_ste_sign_twin(tmp_path):
    model = binary_block_net("gaaf:sin_x", filters=(32, 32))
    calls = []

    def latency(flatbuffers):
        calls.append(dict(flatbuffers))
        return {"model": 3.0, "ste_sign twin": 2.0}

    path = tmp_path / "m.tflite"
    report = export_lce(model, path, latency=latency, **FAST)
    (timed,) = calls
    assert list(timed) == ["model", "ste_sign twin"]
    assert timed["model"] == path.read_bytes()
    assert op_counts(timed["model"])["SIN"] == 2  # sin(x) is not folded
    twin_ops = op_counts(timed["ste_sign twin"])
    assert twin_ops["SIN"] == 0 and twin_ops["LceBconv2d"] == 2
    assert report.latency_ms == 3.0 and report.sign_twin_latency_ms == 2.0
    assert report.af_latency_ratio == 1.5
    assert report.to_json()["af_latency_ratio"] == 1.5
    assert "1.50x the same model with ste_sign" in report.to_markdown()


def test_a_latency_result_without_the_names_is_refused(tmp_path):
    model = binary_block_net("rsign", filters=(32,))
    with pytest.raises(ValueError, match="expected median milliseconds for 'model'"):
        export_lce(model, tmp_path / "m.tflite", latency=lambda f: {}, **FAST)


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
        export_lce(_float_model(), Path("/proc/m.tflite"))


def test_refuses_a_missing_folder_before_converting(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(ValueError) as raised:
        export_lce(_float_model(), missing / "m.tflite")
    message = str(raised.value)
    assert f"folder {str(missing)!r} does not exist" in message
    assert "Pass path in an existing folder, or create it first" in message
    assert not missing.exists()


def test_a_model_without_binary_layers_exports_with_a_warning(tmp_path):
    with pytest.warns(UserWarning, match="no binary layer"):
        report = export_lce(_float_model(), tmp_path / "m.tflite", **FAST)
    assert report.verified and report.op_counts["LceBconv2d"] == 0
    assert any("no binary layer" in message for message in report.warnings)
    assert report.binary_mac_share == 0.0


# --- the `keras-bnn-af export` command ---------------------------------------------


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


def test_cli_flags_map_to_the_export_options(run_folder, tmp_path, monkeypatch):
    from keras_bnn_af import benchmarks

    seen = {}

    def fake_export(model, path, **options):
        seen.update(options)
        raise SystemExit(0)

    monkeypatch.setattr(converters, "export_lce", fake_export)
    flags = ["--strict", "--allow-mismatch", "--latency", "--no-fold"]
    with pytest.raises(SystemExit):
        cli.main(["export", str(run_folder), "--out", str(tmp_path / "m"), *flags])
    assert seen["on_float_conv"] == "raise" and seen["on_mismatch"] == "warn"
    assert seen["latency"] is benchmarks.median_latencies and seen["fold"] is False
    assert seen["progress"] is True  # the command shows verification progress
    seen.clear()
    with pytest.raises(SystemExit):
        cli.main(["export", str(run_folder), "--out", str(tmp_path / "m")])
    assert seen["on_float_conv"] == "warn" and seen["on_mismatch"] == "raise"
    assert seen["latency"] is None and seen["fold"] is True


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
