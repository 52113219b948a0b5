"""Every error path of the `keras-bnn-af` command (issue #13): the exit code, and a
message that says what was wrong (naming the value given), what was expected,
and the fix; and the flags that let an export through (`--allow-mismatch`,
`--no-fold`, `--verify-samples`) doing what they say.

Everything runs in this process (`cli.main`), on tiny models saved the way
`export` loads them (`runs.load_trained_model`). The float32 twin's size, which
costs a second conversion per export and is not what these tests check, is
skipped.
"""

import contextlib
import io
import json
import warnings

import larq as lq
import pytest

from keras_bnn_af import cli
from keras_bnn_af._keras import keras
from keras_bnn_af.converters import export, fold_thresholds, verify
from keras_bnn_af.testing import binary_block_net, randomize_batch_norm

SAMPLES = "8"


def cli_error(capsys, *args) -> str:
    """Runs the command; it must exit 2 without a traceback. Returns its error
    message: stderr from `keras-bnn-af COMMAND: error:` on (after any progress
    lines or argparse's usage)."""
    with pytest.raises(SystemExit) as raised:
        cli.main([*map(str, args)])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    start = err.index(f"keras-bnn-af {args[0]}: error: ")
    assert err.count(f"keras-bnn-af {args[0]}: error: ") == 1
    return err[start:]


@contextlib.contextmanager
def no_float32_twin():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(export, "_twin_size", lambda model: (None, []))
        yield


@pytest.fixture(autouse=True)
def _no_float32_twin():
    with no_float32_twin():
        yield


def _pad_half_net() -> keras.Model:
    """One binary conv LCE leaves in float: pad_values=0.5 (it fuses only 1.0)."""
    inputs = keras.Input((8, 8, 32))
    x = keras.layers.BatchNormalization()(inputs)
    x = lq.layers.QuantConv2D(
        32,
        3,
        padding="same",
        pad_values=0.5,
        input_quantizer="ste_sign",
        kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
        use_bias=False,
        name="pad_half_conv",
    )(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(4)(x))
    randomize_batch_norm(model)
    return model


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name -> a saved .h5 model: `ste_sign`, `rsign` (a threshold binarizer that
    export folds by default) and `pad_half` (a conv LCE leaves in float)."""
    folder = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(0)
    built = {
        "ste_sign": binary_block_net("ste_sign", filters=(32,)),
        "rsign": binary_block_net("rsign", filters=(32,)),
        "pad_half": _pad_half_net(),
    }
    paths = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*HDF5 file.*legacy")
        for name, model in built.items():
            paths[name] = folder / f"{name}.h5"
            model.save(paths[name])
    return paths


@pytest.fixture(scope="module")
def no_fold_export(models, tmp_path_factory):
    """`export rsign.h5 --no-fold --verify-samples 5 --report`: the .tflite file,
    the report JSON and stdout."""
    folder = tmp_path_factory.mktemp("no_fold")
    out, report = folder / "m.tflite", folder / "r.json"
    stdout = io.StringIO()
    with no_float32_twin(), contextlib.redirect_stdout(stdout):
        code = cli.main(
            [
                "export",
                str(models["rsign"]),
                "--out",
                str(out),
                "--report",
                str(report),
                "--no-fold",
                "--verify-samples",
                "5",
            ]
        )
    assert code == 0
    return out, json.loads(report.read_text()), stdout.getvalue()


@pytest.fixture
def corrupted_interpreter(monkeypatch):
    """LCE's interpreter outputs +0.01: a real mismatch, far beyond tolerance."""
    real = verify._run_interpreter

    def corrupted(flatbuffer, inputs, *args, **kwargs):
        outputs, interpreter = real(flatbuffer, inputs, *args, **kwargs)
        return outputs + 0.01, interpreter

    monkeypatch.setattr(verify, "_run_interpreter", corrupted)


# --- export --------------------------------------------------------------------------


def test_export_strict_refuses_a_float_conv_and_writes_nothing(
    models, tmp_path, capsys
):
    out, report = tmp_path / "m.tflite", tmp_path / "r.json"
    error = cli_error(
        capsys,
        *("export", models["pad_half"], "--out", out, "--report", report),
        *("--strict", "--verify-samples", SAMPLES),
    )
    assert error.startswith(
        "keras-bnn-af export: error: on_float_conv='raise' (--strict), and LCE left "
        '1 binary layer(s) as float ops: pad_half_conv (padding="same" with '
        "pad_values=0.5;"
    )
    assert "Expected every binary layer to become a binary LCE op." in error
    assert f"Nothing was written to {str(out)!r}." in error
    assert "pad_half_conv: Use pad_values=1.0." in error
    assert "Or pass on_float_conv='warn' (leave out --strict)" in error
    assert not out.exists() and not report.exists()


def test_a_failed_verification_exits_2_and_writes_nothing(
    models, tmp_path, capsys, corrupted_interpreter
):
    out, report = tmp_path / "m.tflite", tmp_path / "r.json"
    error = cli_error(
        capsys,
        *("export", models["ste_sign"], "--out", out, "--report", report),
        *("--verify-samples", SAMPLES),
    )
    assert error.startswith(
        f"keras-bnn-af export: error: LCE export does not match Keras on {SAMPLES} "
        "samples (seeded standard-normal inputs, seed 0): top-1 agreement"
    )
    assert "expected every sample to agree within 0.001" in error
    assert f"Nothing was written to {str(out)!r}." in error
    assert "or pass on_mismatch='warn' (--allow-mismatch) to write it anyway" in error
    assert not out.exists() and not report.exists()


def test_allow_mismatch_writes_the_file_with_a_warning_and_exits_0(
    models, tmp_path, capsys, corrupted_interpreter
):
    out, report_path = tmp_path / "m.tflite", tmp_path / "r.json"
    with pytest.warns(UserWarning, match="LCE export does not match Keras"):
        code = cli.main(
            [
                *("export", str(models["ste_sign"]), "--out", str(out)),
                *("--report", str(report_path), "--verify-samples", SAMPLES),
                "--allow-mismatch",
            ]
        )
    assert code == 0
    assert out.read_bytes()[4:8] == b"TFL3"
    report = json.loads(report_path.read_text())
    assert report["verified"] is False and report["mismatches"] > 0
    assert report["size_bytes"] == out.stat().st_size
    assert any("Written anyway (on_mismatch='warn')" in w for w in report["warnings"])
    stdout = capsys.readouterr().out
    assert "| verification | **FAILED** on 8 samples" in stdout
    assert "Written anyway" in stdout


def test_export_refuses_an_existing_report_and_keeps_it(models, tmp_path, capsys):
    out, report = tmp_path / "m.tflite", tmp_path / "r.json"
    report.write_text('{"mine": true}\n')
    before = report.stat().st_mtime_ns
    error = cli_error(
        capsys, "export", models["ste_sign"], "--out", out, "--report", report
    )
    assert error == (
        f"keras-bnn-af export: error: {str(report)!r} already exists; expected "
        "--report to name a new file. Pass another --report file, or --overwrite "
        "to replace it.\n"
    )
    assert report.read_text() == '{"mine": true}\n'
    assert report.stat().st_mtime_ns == before
    assert not out.exists()


def test_no_fold_exports_threshold_binarizers_as_they_are(models, no_fold_export):
    model = keras.models.load_model(models["rsign"], compile=False)
    _, folds = fold_thresholds(model)
    assert [fold.folded for fold in folds] == [True]  # what export does by default
    out, report, stdout = no_fold_export
    assert report["threshold_folds"] == [] and report["folded_layers"] == []
    assert report["verified"] and report["size_bytes"] == out.stat().st_size
    assert "Threshold folding" not in stdout


def test_verify_samples_sets_the_number_of_verification_samples(no_fold_export):
    _, report, stdout = no_fold_export
    assert report["samples"] == 5
    assert report["samples_source"] == "seeded standard-normal inputs, seed 0"
    assert "passed on 5 samples" in stdout


@pytest.mark.parametrize("samples", ["0", "-3", "all"])
def test_verify_samples_must_be_a_positive_integer(samples, models, tmp_path, capsys):
    out = tmp_path / "m.tflite"
    error = cli_error(
        capsys, "export", models["ste_sign"], "--out", out, "--verify-samples", samples
    )
    assert (
        f"keras-bnn-af export: error: argument --verify-samples: expected a "
        f"positive integer, got {samples!r}; pass 1 or more\n"
    ) in error
    assert not out.exists()


# --- bench ---------------------------------------------------------------------------


def test_bench_refuses_an_existing_json_and_keeps_it(no_fold_export, tmp_path, capsys):
    tflite, _, _ = no_fold_export
    results = tmp_path / "bench.json"
    results.write_text('{"median_ms": 1.0}\n')
    before = results.stat().st_mtime_ns
    error = cli_error(capsys, "bench", tflite, "--runs", "1", "--json", results)
    assert error == (
        f"keras-bnn-af bench: error: {str(results)!r} already exists; expected "
        "--json to name a new file. Pass another --json file, or --overwrite to "
        "replace it.\n"
    )
    assert results.read_text() == '{"median_ms": 1.0}\n'
    assert results.stat().st_mtime_ns == before


def test_bench_names_an_unknown_kernel_and_the_choices(
    no_fold_export, tmp_path, capsys
):
    tflite, _, _ = no_fold_export
    results = tmp_path / "bench.json"
    error = cli_error(
        capsys, "bench", tflite, "--kernel", "indirect-bgemm", "--json", results
    )
    assert error == (
        "keras-bnn-af bench: error: Unknown kernel configuration 'indirect-bgemm'. "
        "Expected 'auto' (time each configuration, keep the fastest) or one of "
        "'lce_default', 'indirect_bgemm', 'xnnpack', 'indirect_bgemm+xnnpack'. "
        "Did you mean 'indirect_bgemm'? Pass one of them, e.g. kernel='auto' "
        "(--kernel auto).\n"
    )
    assert not results.exists()


# --- plot ----------------------------------------------------------------------------


@pytest.mark.parametrize(("low", "high"), [("3", "-3"), ("1", "1")])
def test_plot_range_needs_low_below_high(low, high, tmp_path, capsys):
    out = tmp_path / "sign.png"
    error = cli_error(capsys, "plot", "ste_sign", "--out", out, "--range", low, high)
    assert error == (
        f"keras-bnn-af plot: error: --range must be LOW HIGH with LOW < HIGH, got "
        f"{float(low)} {float(high)}; pass e.g. --range -3 3.\n"
    )
    assert not out.exists()


# --- train ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["train", "plot"])
def test_malformed_binarizer_json_is_named_with_the_fix(command, tmp_path, capsys):
    spec = '{"class_name": "SteSign", "config": {clip_value: 1.25}}'
    out = tmp_path / ("run" if command == "train" else "sign.png")
    if command == "train":
        args = ["train", "--binarizer", spec, "--epochs", "1", "--out", out]
        option = "--binarizer"
    else:
        args = ["plot", spec, "--out", out]
        option = "binarizer"
    error = cli_error(capsys, *args)
    assert error.startswith(
        f"keras-bnn-af {command}: error: argument {option}: expected an alias or a "
        f"JSON config dict, got {spec!r}, which starts like JSON but does not parse "
        "(Expecting property name enclosed in double quotes: line 1 column 38"
    )
    assert error.endswith(
        "; pass an alias such as ste_sign or valid JSON such as "
        '\'{"class_name": "SteSign", "config": {"clip_value": 1.25}}\'\n'
    )
    assert not out.exists()


def test_train_refuses_a_json_binarizer_it_cannot_build(tmp_path, capsys):
    out = tmp_path / "run"
    error = cli_error(
        capsys,
        *("train", "--binarizer", '{"class_name": "NoSuchSign"}', "--epochs", "1"),
        *("--out", out),
    )
    assert error.startswith(
        "keras-bnn-af train: error: Unknown binarizer {'class_name': 'NoSuchSign'}. "
        "Expected a registered alias such as 'ste_sign', a config dict such as "
    )
    assert "Fix the spelling" in error
    assert not out.exists()
