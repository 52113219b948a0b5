"""android_demo/: the export script, its JSON contract, and the Kotlin constants.

The app itself cannot be built here (no Android SDK platform jar on Debian); these
tests cover what the host can check: the script runs end to end, its contract
describes the exported file and the training-time scaling, the file runs in
LCE's interpreter, and the Kotlin sources agree with the contract.
"""

import hashlib
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

DEMO = Path(__file__).resolve().parents[1] / "android_demo"
SCRIPT = DEMO / "export_model.py"
KOTLIN = DEMO / "app" / "src" / "main" / "java" / "com" / "example" / "bnndigits"


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def script():
    """The export script as a module, for its names (it is not a library)."""
    spec = importlib.util.spec_from_file_location("android_export_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """One quick export: binarynet, 1 epoch on 256 digits, verified on 64."""
    out = tmp_path_factory.mktemp("android") / "assets"
    done = run_script(
        "--train-quick",
        "--max-samples",
        "256",
        "--verify-samples",
        "64",
        "--assets",
        str(out),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def contract(assets):
    return json.loads((assets / "model.json").read_text())


def kotlin_constants(path: Path) -> dict[str, str]:
    text = path.read_text()
    return dict(re.findall(r"const val (\w+)\s*=\s*(.+?)\s*$", text, re.MULTILINE))


def kotlin_number(literal: str) -> float:
    return float(literal.rstrip("fFL"))


def test_the_export_writes_the_model_and_its_contract(assets, contract):
    assert {p.name for p in assets.iterdir()} == {"model.tflite", "model.json"}
    assert contract["format"] == 1
    assert contract["model"] == "model.tflite"
    assert contract["input"]["shape"] == [1, 28, 28, 1]
    assert contract["input"]["dtype"] == "float32"
    assert contract["input"]["layout"] == "NHWC"
    scaling = contract["input"]["scaling"]
    assert isinstance(scaling["scale"], float) and isinstance(scaling["offset"], float)
    assert contract["input"]["background"] == 0
    assert contract["input"]["foreground"] == 255
    # binarynet ends in a softmax layer.
    assert contract["output"] == {"shape": [1, 10], "kind": "probabilities"}
    assert contract["labels"] == [str(d) for d in range(10)]
    assert contract["lce_ops"].get("LceBconv2d", 0) > 0
    verified = contract["verified"]
    assert verified["verified"] is True
    assert verified["samples"] == 64 and verified["samples_source"] == "mnist test[:64]"
    assert 0.0 <= verified["agreement"] <= 1.0


def test_the_sha256_is_the_files(assets, contract):
    data = (assets / "model.tflite").read_bytes()
    assert contract["sha256"] == hashlib.sha256(data).hexdigest()
    assert contract["size_bytes"] == len(data)


def test_the_contract_scaling_is_the_training_scaling(contract):
    from keras_bnn_af import data

    scaling = contract["input"]["scaling"]
    pixels = np.array([0, 128, 255], np.uint8)
    expected = np.asarray(data.scale_images(pixels))
    got = pixels.astype(np.float32) * scaling["scale"] + scaling["offset"]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert expected[0] == -1.0 and expected[-1] == 1.0


def test_the_model_runs_in_lce_on_an_input_built_from_the_contract(assets, contract):
    import larq_compute_engine as lce

    shape = contract["input"]["shape"]
    scaling = contract["input"]["scaling"]
    pixels = np.full(shape, contract["input"]["background"], np.float32)
    pixels[0, 6:22, 13:15, 0] = contract["input"]["foreground"]  # a "1"
    x = (pixels * scaling["scale"] + scaling["offset"]).astype(
        contract["input"]["dtype"]
    )
    interpreter = lce.testing.Interpreter(
        (assets / "model.tflite").read_bytes(), num_threads=1
    )
    y = np.asarray(interpreter.predict(x))
    assert list(y.shape) == contract["output"]["shape"]
    np.testing.assert_allclose(y.sum(), 1.0, atol=1e-4)  # probabilities


def test_existing_assets_are_kept_without_overwrite(assets):
    before = (assets / "model.json").read_bytes()
    done = run_script("--train-quick", "--assets", str(assets))
    assert done.returncode == 1
    assert "already exist" in done.stderr and "--overwrite" in done.stderr
    assert (assets / "model.json").read_bytes() == before


def test_a_model_source_is_required():
    done = run_script("--assets", "unused")
    assert done.returncode == 2 and "RUN_DIR" in done.stderr


def test_the_kotlin_contract_matches_the_export(contract, script):
    constants = kotlin_constants(KOTLIN / "ModelContract.kt")
    assert int(constants["EXPECTED_FORMAT"]) == contract["format"]
    height, width, channels = (
        int(constants[name])
        for name in ("INPUT_HEIGHT", "INPUT_WIDTH", "INPUT_CHANNELS")
    )
    assert [1, height, width, channels] == contract["input"]["shape"]
    assert [1, int(constants["NUM_CLASSES"])] == contract["output"]["shape"]
    assert len(contract["labels"]) == int(constants["NUM_CLASSES"])
    scaling = contract["input"]["scaling"]
    # ModelContract.kt accepts the JSON within 1e-6 of its float literals.
    assert abs(kotlin_number(constants["PIXEL_SCALE"]) - scaling["scale"]) < 1e-6
    assert abs(kotlin_number(constants["PIXEL_OFFSET"]) - scaling["offset"]) < 1e-6
    assert int(constants["BACKGROUND_PIXEL"]) == contract["input"]["background"]
    assert int(constants["FOREGROUND_PIXEL"]) == contract["input"]["foreground"]
    assert script.CONTRACT_FORMAT == contract["format"]


def test_the_asset_names_agree_across_script_kotlin_and_gitignore(contract, script):
    constants = kotlin_constants(KOTLIN / "ModelContract.kt")
    assert constants["MODEL_ASSET"] == f'"{script.MODEL_FILE}"'
    assert constants["CONTRACT_ASSET"] == f'"{script.CONTRACT_FILE}"'
    assert contract["model"] == script.MODEL_FILE
    ignored = (DEMO / "app" / "src" / "main" / "assets" / ".gitignore").read_text()
    assert set(ignored.split()) >= {script.MODEL_FILE, script.CONTRACT_FILE}
    assert script.DEFAULT_ASSETS == DEMO / "app" / "src" / "main" / "assets"


def test_the_gradle_build_keeps_tflite_uncompressed_for_arm64():
    gradle = (DEMO / "app" / "build.gradle.kts").read_text()
    assert re.search(r"minSdk\s*=\s*24\b", gradle)
    assert re.search(r'abiFilters\s*\+=\s*"arm64-v8a"', gradle)
    assert re.search(r'noCompress\s*\+=\s*"tflite"', gradle)
    assert re.search(r'fileTree\(.*"libs".*"\*\.aar"', gradle)
    # The LCE Lite AAR replaces stock TFLite: depending on both duplicates classes.
    code = "\n".join(
        line for line in gradle.splitlines() if not line.strip().startswith("//")
    )
    assert "org.tensorflow:tensorflow-lite" not in code
