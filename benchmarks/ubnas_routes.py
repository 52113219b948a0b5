"""The UBNAS cell space searched two ways at equal CPU time: the differentiable
supernet (`keras-bnn-af nas`) and the genetic oracle (`search --space cell`).

    python benchmarks/ubnas_routes.py [--seeds 0 1 2] [--epochs 10]
        [--max-samples 2000] [--trial-epochs 1] [--final-epochs 10]

Per seed: the NAS route is a `keras-bnn-af nas` search (defaults: K = 2,
early stop) plus training its derived cell for `--final-epochs`; its CPU time
(children's user + system time, `getrusage`) is the budget. The genetic
route runs `keras-bnn-af search --space cell` (`--trial-epochs` per trial):
two trials first, to measure CPU per trial, then `--resume` with as many
trials as the rest of the budget (less the final training) pays for, and its
best cell is trained like the NAS route's. Both final nets train in the same
process, the same way (`deploy.train_derived`); reported: CPU-minutes of each
route, trials, validation and test accuracy of the final net.

Writes benchmarks/results/ubnas_routes.json and docs/ubnas_routes.md.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
CLI = [sys.executable, "-m", "keras_bnn_af.cli"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--max-samples", type=int, default=2000)
    parser.add_argument("--trial-epochs", type=int, default=1)
    parser.add_argument("--final-epochs", type=int, default=10)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in args.seeds:
            for row in compare(args, seed, Path(folder)):
                rows.append(row)
                print(json.dumps(row), flush=True)
    result = {"settings": vars(args), "runs": rows}
    (ROOT / "results" / "ubnas_routes.json").write_text(
        json.dumps(result, indent=1) + "\n"
    )
    text = render(result)
    (ROOT.parent / "docs" / "ubnas_routes.md").write_text(text)
    print(text)
    return 0


def compare(args, seed: int, folder: Path) -> list[dict]:
    from keras_bnn_af.searchers.ubnas.config import NasConfig
    from keras_bnn_af.searchers.ubnas.genotype import Genotype

    data = [f"--max-samples={args.max_samples}", "--dataset=mnist1d", f"--seed={seed}"]
    nas_out = folder / f"nas_{seed}"
    nas_cpu = _cpu(CLI + ["nas", *data, f"--epochs={args.epochs}", f"--out={nas_out}"])
    config = NasConfig.from_json(json.loads((nas_out / "config.json").read_text()))
    nas_final, nas_final_cpu = _final(
        Genotype.load(nas_out / "genotype.json"),
        config,
        args,
        folder / f"nas_final_{seed}",
    )
    budget = nas_cpu + nas_final_cpu
    ga_out = folder / f"ga_{seed}"
    search = CLI + ["search", "--space=cell", *data, f"--epochs={args.trial_epochs}"]
    search += [f"--out={ga_out}"]
    pilot = _cpu(search + ["--max-trials=2"])
    trials = max(2, int((budget - nas_final_cpu) / (pilot / 2)))
    ga_cpu = pilot + (
        _cpu(search + ["--resume", f"--max-trials={trials}"]) if trials > 2 else 0
    )
    results = json.loads((ga_out / "results.json").read_text())
    best = max(
        (t for t in results["trials"] if t["status"] == "COMPLETED"),
        key=lambda t: t["score"],
    )
    from keras_bnn_af.searchers.ubnas.hyper import CellHyperModel

    cells = CellHyperModel(input_shape=(40, 1), num_classes=10)
    ga_final, ga_final_cpu = _final(
        cells.genotype(best["values"]), config, args, folder / f"ga_final_{seed}"
    )
    return [
        {
            "seed": seed,
            "route": "supernet (nas)",
            "cpu_minutes": budget / 60,
            "search_cpu_minutes": nas_cpu / 60,
            "trials": None,
            **nas_final,
        },
        {
            "seed": seed,
            "route": "genetic oracle (search --space cell)",
            "cpu_minutes": (ga_cpu + ga_final_cpu) / 60,
            "search_cpu_minutes": ga_cpu / 60,
            "trials": results.get("completed", len(results["trials"])),
            **ga_final,
        },
    ]


def _cpu(command: list[str]) -> float:
    """CPU-seconds (user + system) of `command`, run to its end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _final(genotype, config, args, out: Path) -> tuple[dict, float]:
    from keras_bnn_af.searchers.ubnas.deploy import train_derived

    start = time.process_time()
    report = train_derived(genotype, config, out, epochs=args.final_epochs)
    cpu = time.process_time() - start
    keys = ("val_accuracy", "test_accuracy", "params", "host_latency_ms", "genotype")
    return {key: report[key] for key in keys}, cpu


def _mean_std(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3g} +- {spread:.2g}"


def render(result: dict) -> str:
    s = result["settings"]
    lines = [
        "# The cell space two ways: supernet against genetic oracle",
        "",
        f"Generated by `python benchmarks/ubnas_routes.py`: mnist1d, at most "
        f"{s['max_samples']} examples per split, seeds {s['seeds']}, mean +- std. "
        f"Supernet: `keras-bnn-af nas --epochs {s['epochs']}` (3 cells x 2 nodes, 8 "
        "channels, K = 2, early stop). Genetic oracle: `keras-bnn-af search --space "
        f"cell --epochs {s['trial_epochs']}` with as many trials as the supernet "
        "route's CPU time pays for. Both final nets: the found cell trained "
        f"{s['final_epochs']} epochs the same way; CPU-minutes include that "
        "training. This machine: 2 shared x86 cores.",
        "",
        "| route | CPU-minutes | of which search | trials | final val accuracy "
        "| final test accuracy | host ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for route in dict.fromkeys(r["route"] for r in result["runs"]):
        rows = [r for r in result["runs"] if r["route"] == route]
        lines.append(
            f"| {route} | {_mean_std(r['cpu_minutes'] for r in rows)} "
            f"| {_mean_std(r['search_cpu_minutes'] for r in rows)} "
            f"| {_mean_std(r['trials'] for r in rows)} "
            f"| {_mean_std(r['val_accuracy'] for r in rows)} "
            f"| {_mean_std(r['test_accuracy'] for r in rows)} "
            f"| {_mean_std(r['host_latency_ms'] for r in rows)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
