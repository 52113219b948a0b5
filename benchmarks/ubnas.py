"""UBNAS on a 2-core CPU: search cost by partial channels and early stopping,
and the derived net against a hand-designed BNN of equal binary MACs.

    python benchmarks/ubnas.py [--seeds 0 1 2] [--ks 1 2 4] [--epochs 10]
        [--patience 2] [--dataset mnist1d] [--max-samples 2000]
        [--derived-epochs 10] [--derived-k 2]

Per seed and K, one `keras-bnn-af nas --patience 0` search runs to the end in
its own process (so its peak RSS is its own). Its history gives the cost
without early stopping (CPU-seconds of all epochs) and with it: the early-stop
rule (`search._stable`, patience `--patience`) is a function of the history
alone, so the stopped search is a prefix of the full one, and its cost is the
CPU-seconds up to the epoch where the rule fires. Time per step is the median
over the searched epochs (both updates per step), memory the process's peak
RSS. Then the early-stopped genotype of the `--derived-k` search is trained
(`deploy.train_derived`) beside `models.conv1d` with its width scaled to the
derived net's binary MACs, both for `--derived-epochs` epochs with the same
data, optimizer and seed, and both exported and timed on this host (LCE's
interpreter, interleaved rounds: it ranks models on this host only).

Writes benchmarks/results/ubnas.json and docs/ubnas.md.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SETTINGS = ("dataset", "max_samples", "cells", "nodes", "channels", "batch_size")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--dataset", default="mnist1d")
    parser.add_argument("--max-samples", type=int, default=2000)
    parser.add_argument("--cells", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--derived-epochs", type=int, default=10)
    parser.add_argument("--derived-k", type=int, default=2)
    args = parser.parse_args(argv)
    if args.dataset != "mnist1d":
        parser.error(
            f"--dataset {args.dataset}: the hand-designed reference is "
            "models.conv1d, for mnist1d only. Fix: drop --dataset."
        )
    searches, derived = [], []
    with tempfile.TemporaryDirectory() as folder:
        for seed in args.seeds:
            for k in args.ks:
                searches.append(search(args, seed, k, Path(folder)))
                print(json.dumps(searches[-1]), flush=True)
            chosen = next(
                s for s in searches if s["seed"] == seed and s["k"] == args.derived_k
            )
            derived += compare(args, seed, chosen, Path(folder))
            print(json.dumps(derived[-2:]), flush=True)
    result = {"settings": vars(args), "searches": searches, "derived": derived}
    (ROOT / "results" / "ubnas.json").write_text(json.dumps(result, indent=1) + "\n")
    text = render(result)
    (ROOT.parent / "docs" / "ubnas.md").write_text(text)
    print(text)
    return 0


def search(args, seed: int, k: int, folder: Path) -> dict:
    from keras_bnn_af.searchers.ubnas.config import NasConfig
    from keras_bnn_af.searchers.ubnas.search import _stable, read_history

    out = folder / f"search_{seed}_k{k}"
    options = [f"--{name.replace('_', '-')}={getattr(args, name)}" for name in SETTINGS]
    command = [sys.executable, "-m", "keras_bnn_af.cli", "nas", *options]
    command += [f"--epochs={args.epochs}", f"--partial-channels={k}", "--patience=0"]
    command += [f"--seed={seed}", f"--out={out}"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    history = read_history(out)
    config = NasConfig.from_json(json.loads((out / "config.json").read_text()))
    rule = NasConfig.from_json({**config.to_json(), "patience": args.patience})
    stop = next(
        (n for n in range(1, len(history) + 1) if _stable(history[:n], rule)),
        len(history),
    )
    # the first epoch of each phase traces its tf.function steps: left out of
    # the per-step figures (not of the CPU-minutes)
    searched = [r for r in history if r["phase"] == "search"][1:] or history[-1:]
    return {
        "seed": seed,
        "k": k,
        "epochs": len(history),
        "cpu_minutes": sum(r["cpu_seconds"] for r in history) / 60,
        "stop_epoch": stop,
        "cpu_minutes_early": sum(r["cpu_seconds"] for r in history[:stop]) / 60,
        "step_ms": statistics.median(r["step_ms"] for r in searched),
        "cpu_ms_per_step": statistics.median(
            1000 * r["cpu_seconds"] / r["steps"] for r in searched
        ),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in history),
        "val_accuracy": history[-1]["val_accuracy"],
        "same_genotype": history[stop - 1]["genotype"] == history[-1]["genotype"],
        "genotype": history[stop - 1]["genotype"],
    }


def compare(args, seed: int, chosen: dict, folder: Path) -> list[dict]:
    from keras_bnn_af import macs, models
    from keras_bnn_af.searchers.ubnas.config import NasConfig
    from keras_bnn_af.searchers.ubnas.deploy import train_derived
    from keras_bnn_af.searchers.ubnas.derived import build_derived
    from keras_bnn_af.searchers.ubnas.genotype import Genotype

    config = NasConfig(
        **{name: getattr(args, name) for name in SETTINGS},
        learning_rate=1e-3,
        seed=seed,
    )
    genotype = Genotype.from_json(chosen["genotype"])
    shape = (40, 1)
    net = build_derived(
        genotype,
        input_shape=shape,
        num_classes=10,
        cells=args.cells,
        channels=args.channels,
    )
    target = macs.count(macs.layer_macs(net), 1)
    width = min(
        range(4, 257, 4),
        key=lambda w: abs(
            macs.count(macs.layer_macs(models.conv1d(input_shape=shape, width=w)), 1)
            - target
        ),
    )
    reference = models.conv1d("approx_sign", input_shape=shape, width=width)
    rows = []
    for name, model in (("UBNAS derived", None), ("conv1d, width matched", reference)):
        report = train_derived(
            genotype,
            config,
            folder / f"derived_{seed}_{len(rows)}",
            epochs=args.derived_epochs,
            model=model,
        )
        counted = net if model is None else model
        rows.append(
            {
                "seed": seed,
                "net": name,
                "width": None if model is None else width,
                "binary_macs": macs.count(macs.layer_macs(counted), 1),
                **{key: report[key] for key in REPORTED},
            }
        )
    return rows


REPORTED = (
    "params",
    "binary_mac_share",
    "size_bytes",
    "val_accuracy",
    "test_accuracy",
    "host_latency_ms",
    "predicted_ms",
)


def _mean_std(values) -> str:
    values = list(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{_number(statistics.mean(values))} +- {_number(spread)}"


def _widths(rows) -> str:
    widths = [r.get("width") for r in rows]
    return "-" if None in widths else ", ".join(map(str, widths))


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def render(result: dict) -> str:
    s = result["settings"]
    lines = [
        "# UBNAS: search cost and the derived net",
        "",
        f"Generated by `python benchmarks/ubnas.py`: {s['dataset']}, at most "
        f"{s['max_samples']} examples per split (the training pool halved: weights "
        f"on one half, α and β on the other), supernet of {s['cells']} cells x "
        f"{s['nodes']} nodes, {s['channels']} channels, batch {s['batch_size']}, "
        f"{s['epochs']} search epochs (half of them warm-up), seeds {s['seeds']}; "
        "mean +- std over seeds. This machine: 2 shared x86 cores, no GPU. CPU-minutes "
        "count every epoch, including the first of each phase, which traces the "
        "TensorFlow steps (about 0.5 CPU-minutes per search); the per-step figures "
        "leave those epochs out (one weight and one architecture update per step).",
        "",
        f"## Search cost by partial channels K (early stop: patience {s['patience']})",
        "",
        "| K | CPU-minutes, full | CPU-minutes, early stop | stop epoch "
        "| same genotype as the full run | ms per step | CPU-ms per step "
        "| peak RSS MB | supernet val accuracy |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for k in s["ks"]:
        rows = [r for r in result["searches"] if r["k"] == k]
        same = sum(r["same_genotype"] for r in rows)
        lines.append(
            f"| {k} | {_mean_std(r['cpu_minutes'] for r in rows)} "
            f"| {_mean_std(r['cpu_minutes_early'] for r in rows)} "
            f"| {_mean_std(r['stop_epoch'] for r in rows)} | {same} of {len(rows)} "
            f"| {_mean_std(r['step_ms'] for r in rows)} "
            f"| {_mean_std(r['cpu_ms_per_step'] for r in rows)} "
            f"| {_mean_std(r['peak_rss_mb'] for r in rows)} "
            f"| {_mean_std(r['val_accuracy'] for r in rows)} |"
        )
    lines += [
        "",
        f"## The derived net (K = {s['derived_k']}, early-stopped genotype) against "
        "a hand-designed BNN of equal binary MACs",
        "",
        f"Both trained {s['derived_epochs']} epochs (Adam 1e-3, same data and seed), "
        "exported with `export_lce` (verified). Host latency: LCE's interpreter on "
        "this x86 host, interleaved rounds; it ranks models on this host only. "
        "Predicted: the `rpi4b` profile, 1 thread.",
        "",
        "| net | width | binary MACs | params | size bytes | test accuracy | host ms "
        "| rpi4b ms (predicted) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    names = dict.fromkeys(r["net"] for r in result["derived"])
    for name in names:
        rows = [r for r in result["derived"] if r["net"] == name]
        lines.append(
            f"| {name} | {_widths(rows)} | {_mean_std(r['binary_macs'] for r in rows)} "
            f"| {_mean_std(r['params'] for r in rows)} "
            f"| {_mean_std(r['size_bytes'] for r in rows)} "
            f"| {_mean_std(r['test_accuracy'] for r in rows)} "
            f"| {_mean_std(r['host_latency_ms'] for r in rows)} "
            f"| {_mean_std(r['predicted_ms']['rpi4b'] for r in rows)} |"
        )
    lines += [
        "",
        "Published anchors (CIFAR-10 top-1, GPU searches, not comparable with these "
        "tiny CPU runs): BNAS 96.53 %, BATS 96.1 %, CP-NAS 95.27 %, EBNAS 95.61 % at "
        "0.04-0.4 GPU-days (`../shared/research/edge.md`).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
