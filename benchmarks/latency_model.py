"""Fit the `host` latency profile on generated BNNs and test it on held-out ones.

    python benchmarks/latency_model.py [--train 70] [--test 50] [--rounds 3]
    python benchmarks/latency_model.py --samples results/latency_samples.jsonl

Generates `--train` nets (`keras_bnn_af.latency.corpus`, seeds 0.., input sizes
`TRAIN_INPUT_SIZES`) and `--test` held-out nets (seeds 10000.., sizes
`TEST_INPUT_SIZES`), plus larq-zoo's QuickNetSmall / QuickNet / QuickNetLarge at
224x224 for the fit; converts each as `export_lce` would (thresholds folded) and
times all of them on this host with one kernel configuration (`--kernel`, by
default the fastest for QuickNetSmall), in `--rounds` rounds over all nets in
a seeded shuffled order, so load drifts spread over every net; a net's latency
is its fastest round's median (this shared VM has slow rounds: interference
from outside, not the net).
Then fits the per-op model and the simplest baseline (a * binary MACs + b *
float MACs, same non-negative least squares) on the training nets and reports,
on the held-out nets: median |error|, share within +-10 %, Spearman rank
correlation and prediction time per model (from the .tflite file).

Measurements are appended to benchmarks/results/latency_samples.jsonl (with a
run id; `--keep DIR` keeps the .tflite files); `--samples FILE` refits from
such a file without measuring (the prediction time is then not measured).
Writes keras_bnn_af/latency/profiles/host.json,
benchmarks/results/latency_model.json and docs/latency_model.md.
"""

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from keras_bnn_af.latency import LatencyModel, LatencySample, graph_features
from keras_bnn_af.latency.corpus import (
    TEST_INPUT_SIZES,
    build_net,
    convert,
    random_spec,
)

ROOT = Path(__file__).resolve().parent
SAMPLES = ROOT / "results" / "latency_samples.jsonl"
PROFILE = ROOT.parent / "keras_bnn_af" / "latency" / "profiles" / "host.json"
QUICKNETS = ("quicknet_small", "quicknet", "quicknet_large")
TEST_SEED = 10_000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=70)
    parser.add_argument("--test", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--samples", type=Path, default=None)
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep the .tflite files in this folder"
    )
    parser.add_argument(
        "--reuse", type=Path, default=None, help="measure the files --keep kept"
    )
    parser.add_argument("--kernel", default="auto")
    args = parser.parse_args(argv)
    predict_ms = None
    if args.samples:
        rows = [json.loads(line) for line in args.samples.read_text().splitlines()]
    else:
        with tempfile.TemporaryDirectory() as folder:
            work = args.keep or Path(folder)
            work.mkdir(parents=True, exist_ok=True)
            if args.reuse:
                files = reuse(args.reuse)
            else:
                files = generate(work, args.train, args.test)
            rows = measure(files, args.rounds, args.runs, args.kernel)
            append_samples(rows)
            predict_ms = prediction_time(files, rows)
    result = evaluate(rows, predict_ms)
    (ROOT / "results" / "latency_model.json").write_text(
        json.dumps(result, indent=1) + "\n"
    )
    (ROOT.parent / "docs" / "latency_model.md").write_text(render(result))
    print(render(result))
    return 0


def generate(folder: Path, train: int, test: int) -> dict[str, dict]:
    """name -> {path, split, spec}: the nets as .tflite files in `folder`."""
    from keras_bnn_af import models

    files = {}
    nets = [(seed, "train", None) for seed in range(train)]
    nets += [(TEST_SEED + seed, "test", TEST_INPUT_SIZES) for seed in range(test)]
    for number, (seed, split, sizes) in enumerate(nets, 1):
        spec = random_spec(seed) if sizes is None else random_spec(seed, sizes)
        path = folder / f"{spec.name}.tflite"
        path.write_bytes(convert(build_net(spec)))
        files[spec.name] = {"path": path, "split": split}
        print(f"[{number}/{len(nets)}] {spec.name}", file=sys.stderr, flush=True)
    for name in QUICKNETS:
        path = folder / f"{name}.tflite"
        path.write_bytes(convert(models.build(name)))
        files[name] = {"path": path, "split": "train"}
        print(f"{name} 224x224x3", file=sys.stderr, flush=True)
    return files


def reuse(folder: Path) -> dict[str, dict]:
    """The nets `--keep` kept, split by seed as `generate` made them."""
    files = {}
    for path in sorted(folder.glob("*.tflite")):
        seed = path.stem[3:].split("_")[0] if path.stem.startswith("bnn") else None
        test = seed is not None and int(seed) >= TEST_SEED
        files[path.stem] = {"path": path, "split": "test" if test else "train"}
    return files


def measure(
    files: dict[str, dict], rounds: int, runs: int, kernel: str = "auto"
) -> list[dict]:
    """One row per net: features, split, kernel and latency in ms: the fastest
    round's median (on a shared VM a slow round is interference, not the net)."""
    from keras_bnn_af.benchmarks import benchmark_tflite
    from keras_bnn_af.benchmarks.host import _time, read_tflite

    if kernel == "auto":
        kernel = benchmark_tflite(files["quicknet_small"]["path"], runs=20).kernel
    flatbuffers = {name: read_tflite(f["path"])[0] for name, f in files.items()}
    medians: dict[str, list[float]] = {name: [] for name in files}
    rng = random.Random(0)
    for round_ in range(rounds):
        order = list(files)
        rng.shuffle(order)
        for name in order:
            count = max(3, runs // 4) if name in QUICKNETS else runs
            times = _time(flatbuffers[name], kernel, 1, count, 2, 0)
            medians[name].append(statistics.median(times))
        print(f"round {round_ + 1}/{rounds}", file=sys.stderr, flush=True)
    run = uuid.uuid4().hex[:8]
    return [
        {
            "run": run,
            "name": name,
            "split": f["split"],
            "kernel": kernel,
            "threads": 1,
            "latency_ms": round(min(medians[name]), 4),
            "round_medians_ms": [round(m, 4) for m in medians[name]],
            "features": graph_features(f["path"]),
        }
        for name, f in files.items()
    ]


def append_samples(rows: list[dict]) -> None:
    SAMPLES.parent.mkdir(exist_ok=True)
    with SAMPLES.open("a") as file:
        for row in rows:
            file.write(json.dumps(row, sort_keys=True) + "\n")


def prediction_time(files: dict[str, dict], rows: list[dict]) -> float:
    """Median ms of `predict` from a .tflite file (read, features, sum)."""
    model = LatencyModel.fit(_samples(rows, "train"), name="timing")
    times = []
    for f in files.values():
        start = time.perf_counter()
        model.predict(f["path"])
        times.append((time.perf_counter() - start) * 1e3)
    return round(statistics.median(times), 3)


def _samples(rows: list[dict], split: str, baseline: bool = False) -> list:
    return [
        LatencySample(
            row["name"],
            _baseline_features(row["features"]) if baseline else row["features"],
            row["threads"],
            row["latency_ms"],
        )
        for row in rows
        if row["split"] == split
    ]


def _baseline_features(features: dict) -> dict:
    """What the simplest predictor sees: binary MACs and float MACs."""
    binary = features.get("bconv_macs", 0.0) + features.get("bconv_macs_1x1", 0.0)
    floats = sum(features.get(f, 0.0) for f in ("conv_macs", "depthwise_macs"))
    return {"bconv_macs": binary, "conv_macs": floats + features.get("dense_macs", 0)}


def evaluate(rows: list[dict], predict_ms: float | None) -> dict:
    from scipy.stats import spearmanr

    rows = _latest_run(rows)
    kernel = rows[0]["kernel"]
    result = {"kernel": kernel, "predict_ms": predict_ms, "models": {}}
    for label, baseline in (("per-op model", False), ("binary + float MACs", True)):
        model = LatencyModel.fit(_samples(rows, "train", baseline), name="host")
        test = _samples(rows, "test", baseline)
        predicted = np.array([model.predict_features(s.features) for s in test])
        measured = np.array([s.latency_ms for s in test])
        error = predicted / measured - 1
        result["models"][label] = {
            "train": model.fit_error[1],
            "test": {
                "samples": len(test),
                "median_abs_error": round(float(np.median(np.abs(error))), 4),
                "within_10pct": round(float(np.mean(np.abs(error) <= 0.1)), 4),
                "spearman": round(float(spearmanr(predicted, measured)[0]), 4),
                "worst": _worst(test, error),
            },
        }
        if not baseline:
            _save_host_profile(model, rows, result["models"][label]["test"], kernel)
    return result


def _latest_run(rows: list[dict]) -> list[dict]:
    last = rows[-1]["run"]
    return [row for row in rows if row["run"] == last]


def _worst(samples, error, count: int = 3) -> list[str]:
    order = np.argsort(-np.abs(error))[:count]
    return [f"{samples[i].name} {error[i]:+.1%}" for i in order]


def _save_host_profile(model, rows, test: dict, kernel: str) -> None:
    import platform

    train = [row for row in rows if row["split"] == "train"]
    model.rests_on = (
        f"{len(train)} nets timed on this x86 host ({platform.processor() or 'x86_64'}"
        f", LCE {_lce_version()} Python interpreter, kernel {kernel}, 1 thread): "
        f"{len(train) - len(QUICKNETS)} generated BNNs (keras_bnn_af.latency.corpus, "
        "seeds 0.., inputs 28-64) and larq-zoo QuickNetSmall / QuickNet / "
        f"QuickNetLarge at 224x224. Held out: {test['samples']} nets of other seeds "
        f"and input sizes, median |error| {test['median_abs_error']:.1%}, "
        f"{test['within_10pct']:.0%} within +-10 %, Spearman {test['spearman']:.3f} "
        "(benchmarks/latency_model.py, docs/latency_model.md). x86 host latency "
        "ranks models on this host only."
    )
    model.device = {"device": "host", "arch": platform.machine(), "kernel": kernel}
    PROFILE.parent.mkdir(exist_ok=True)
    model.save(PROFILE)


def _lce_version() -> str:
    from importlib.metadata import version

    return version("larq-compute-engine")


def render(result: dict) -> str:
    lines = [
        "# Latency model accuracy on this host",
        "",
        "Generated by `python benchmarks/latency_model.py`: fitted on generated BNNs "
        "plus the QuickNet family, tested on held-out generated BNNs of other seeds "
        f"and input sizes, all timed with LCE's Python interpreter (kernel "
        f"`{result['kernel']}`, 1 thread) on this shared x86 host. x86 host latency "
        "ranks models on this host only.",
        "",
        "| predictor | train nets | train median abs error | test nets "
        "| test median abs error | test within 10 % | Spearman | worst test nets |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, entry in result["models"].items():
        train, test = entry["train"], entry["test"]
        lines.append(
            f"| {label} | {train['samples']} | {train['median_abs_error']:.1%} "
            f"| {test['samples']} | {test['median_abs_error']:.1%} "
            f"| {test['within_10pct']:.0%} | {test['spearman']:.3f} "
            f"| {', '.join(test['worst'])} |"
        )
    if result["predict_ms"] is not None:
        lines += [
            "",
            f"Prediction time: {result['predict_ms']} ms per model "
            "(median; read the .tflite, compute features, sum).",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
