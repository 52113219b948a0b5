"""Exports a trained binarynet into the Android demo's assets, with its contract.

    python android_demo/export_model.py RUN_DIR [--assets DIR] [--overwrite]
    python android_demo/export_model.py --train-quick [--max-samples 512]

RUN_DIR is a `keras-bnn-af train` run folder (or a .h5 / SavedModel) of a model
with a 28x28x1 input and 10 outputs. `--train-quick` instead trains binarynet
for one epoch on offline MNIST into a temporary run (a smoke-test model, not an
accurate one). The model is exported with `keras_bnn_af.converters.export_lce`,
verified against Keras on MNIST test digits, and two files are written to the
assets folder (default: android_demo/app/src/main/assets):

- `model.tflite`: the LCE flatbuffer the app runs;
- `model.json`: the contract the app checks at start-up (`ModelContract.kt`):
  input shape, dtype and layout, the pixel scaling `x * scale + offset` that
  `keras_bnn_af.data.scale_images` applies in training, the background and
  stroke pixel values, the output shape and kind, the labels, the file's
  SHA-256 and the verification result.

`--float32-twin PATH` also writes the float32 twin (same weights, no
quantizers) for `keras-bnn-af bench ... --compare PATH`; it is not an asset.
Existing assets are kept unless `--overwrite` is given.
"""

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

DEMO_DIR = Path(__file__).resolve().parent
DEFAULT_ASSETS = DEMO_DIR / "app" / "src" / "main" / "assets"
#: Asset file names; ModelContract.kt names the same files.
MODEL_FILE = "model.tflite"
CONTRACT_FILE = "model.json"
CONTRACT_FORMAT = 1
INPUT_SHAPE = [1, 28, 28, 1]
NUM_CLASSES = 10
#: `scale_images` maps a uint8 pixel x to x / 127.5 - 1.
PIXEL_SCALE = 1.0 / 127.5
PIXEL_OFFSET = -1.0
#: MNIST digits are white strokes (255) on a black background (0).
BACKGROUND_PIXEL = 0
FOREGROUND_PIXEL = 255
LABELS = [str(digit) for digit in range(NUM_CLASSES)]
DEFAULT_VERIFY_SAMPLES = 1000


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "run_dir",
        nargs="?",
        help="a `keras-bnn-af train` run folder (or .h5 / SavedModel)",
    )
    parser.add_argument(
        "--train-quick",
        action="store_true",
        help="train binarynet for 1 epoch on offline MNIST instead of loading a run",
    )
    parser.add_argument(
        "--max-samples",
        type=int,
        default=None,
        help="with --train-quick: cap on every MNIST split (default: all)",
    )
    parser.add_argument(
        "--assets",
        type=Path,
        default=DEFAULT_ASSETS,
        help=f"folder for {MODEL_FILE} and {CONTRACT_FILE} (default: %(default)s)",
    )
    parser.add_argument(
        "--verify-samples",
        type=int,
        default=DEFAULT_VERIFY_SAMPLES,
        help="MNIST test digits to verify the export on (default: %(default)s)",
    )
    parser.add_argument(
        "--float32-twin",
        type=Path,
        default=None,
        help="also write the float32 twin here, for `keras-bnn-af bench --compare`",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace existing assets"
    )
    args = parser.parse_args(argv)
    if (args.run_dir is None) == (not args.train_quick):
        parser.error(
            "give exactly one model source: RUN_DIR, or --train-quick. "
            "Pass a `keras-bnn-af train` run folder, or --train-quick for a "
            "one-epoch smoke-test model."
        )
    if args.max_samples is not None and not args.train_quick:
        parser.error("--max-samples only applies with --train-quick; drop it.")
    for name in ("max_samples", "verify_samples"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}.")
    return args


def existing_assets(assets: Path, twin: Path | None) -> list[Path]:
    targets = [assets / MODEL_FILE, assets / CONTRACT_FILE]
    return [path for path in [*targets, *([twin] if twin else [])] if path.exists()]


def check_scaling() -> None:
    """The contract's scale and offset must reproduce `scale_images` exactly."""
    from keras_bnn_af import data

    pixels = np.arange(256, dtype=np.uint8)
    expected = np.asarray(data.scale_images(pixels))
    contract = pixels.astype(np.float32) * np.float32(PIXEL_SCALE) + PIXEL_OFFSET
    worst = float(np.max(np.abs(contract - expected)))
    if worst > 1e-6:
        raise SystemExit(
            f"The contract scaling x * {PIXEL_SCALE} + {PIXEL_OFFSET} differs from "
            f"keras_bnn_af.data.scale_images by up to {worst:.3g}; expected them "
            "to agree within 1e-6. Update PIXEL_SCALE / PIXEL_OFFSET here and in "
            "ModelContract.kt to what scale_images does."
        )


def load_model(args, workdir: Path):
    from keras_bnn_af import runs, training

    if not args.train_quick:
        return runs.load_trained_model(args.run_dir), Path(args.run_dir).resolve().name
    config = training.TrainConfig(
        dataset="mnist", model="binarynet", epochs=1, max_samples=args.max_samples
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        training.train(config, workdir / "run", verbose=0)
    return runs.load_trained_model(workdir / "run"), "--train-quick"


def check_model(model) -> None:
    input_shape = list(model.input_shape[1:])
    output_shape = list(model.output_shape[1:])
    if input_shape != INPUT_SHAPE[1:] or output_shape != [NUM_CLASSES]:
        raise SystemExit(
            f"The model takes {input_shape} and returns {output_shape}; the app "
            f"expects a {INPUT_SHAPE[1:]} image and {NUM_CLASSES} class scores. "
            "Export an MNIST model, e.g. `keras-bnn-af train --model binarynet`."
        )


def output_kind(model) -> str:
    """`probabilities` when the last layer is a softmax, else `logits`."""
    activation = getattr(model.layers[-1], "activation", None)
    name = getattr(activation, "__name__", "")
    return "probabilities" if name == "softmax" else "logits"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def contract(model, report, tflite: Path, source: str) -> dict:
    return {
        "format": CONTRACT_FORMAT,
        "model": MODEL_FILE,
        "sha256": sha256(tflite),
        "size_bytes": tflite.stat().st_size,
        "source": source,
        "input": {
            "shape": INPUT_SHAPE,
            "dtype": "float32",
            "layout": "NHWC",
            "scaling": {
                "formula": "x * scale + offset",
                "scale": PIXEL_SCALE,
                "offset": PIXEL_OFFSET,
                "pixel_range": [0, 255],
                "same_as": "keras_bnn_af.data.scale_images",
            },
            "background": BACKGROUND_PIXEL,
            "foreground": FOREGROUND_PIXEL,
        },
        "output": {"shape": [1, NUM_CLASSES], "kind": output_kind(model)},
        "labels": LABELS,
        "lce_ops": {
            name: count
            for name, count in sorted(report.op_counts.items())
            if name.startswith("Lce") and count
        },
        "verified": {
            "verified": bool(report.verified),
            "agreement": float(report.top1_agreement),
            "samples": int(report.samples),
            "samples_source": report.samples_source,
            "max_abs_diff": float(report.max_abs_diff),
            "lce_accuracy": (
                None if report.lce_accuracy is None else float(report.lce_accuracy)
            ),
        },
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    assets = args.assets
    if assets.exists() and not assets.is_dir():
        print(
            f"error: --assets {str(assets)!r} is a file; expected a folder. "
            "Pass a folder, e.g. android_demo/app/src/main/assets.",
            file=sys.stderr,
        )
        return 2
    present = existing_assets(assets, args.float32_twin)
    if present and not args.overwrite:
        names = ", ".join(str(path) for path in present)
        print(
            f"error: {names} already exist(s); this script does not replace "
            "exported assets by default. Pass --overwrite to replace them, or "
            "--assets to write elsewhere.",
            file=sys.stderr,
        )
        return 1
    check_scaling()

    from keras_bnn_af import converters

    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        model, source = load_model(args, workdir)
        check_model(model)
        staged = workdir / MODEL_FILE
        report = converters.export_lce(
            model,
            staged,
            verify_with="mnist",
            num_samples=args.verify_samples,
            float32_twin_size=False,
        )
        document = contract(model, report, staged, source)
        assets.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(staged, assets / MODEL_FILE)
        (assets / CONTRACT_FILE).write_text(json.dumps(document, indent=2) + "\n")
        if args.float32_twin:
            twin = converters.convert_float32(converters.float32_twin(model))
            args.float32_twin.write_bytes(twin)
    verified = document["verified"]
    print(
        f"wrote {assets / MODEL_FILE} ({document['size_bytes']} bytes, "
        f"LCE ops {document['lce_ops']}) and {assets / CONTRACT_FILE}; "
        f"top-1 agreement with Keras {verified['agreement']:.2%} on "
        f"{verified['samples']} samples ({verified['samples_source']})"
    )
    if args.float32_twin:
        print(f"wrote the float32 twin {args.float32_twin}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
