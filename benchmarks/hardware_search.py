"""Accuracy-only against Pareto (accuracy, latency) search at an equal budget.

    python benchmarks/hardware_search.py [--seeds 0 1 2] [--budget 24] [--epochs 3]
        [--max-samples 2000] [--dataset mnist1d] [--device-model host]

Runs `keras-bnn-af search --space arch` three times per seed on the same data
and budget: once for validation accuracy alone, once with `--objectives
val_accuracy,latency`, and once more with `--latency-budget-ms` set to 1.1x the
baseline's latency (the constraint the goal is judged at). All record every
trial's latency predicted by `--device-model`, so all are judged alike: the
hypervolume of their (accuracy, latency) front with the reference point
(accuracy 0, latency 2 x the baseline's: the dataset's reference net with
`ste_sign`), and the best validation accuracy at most 1.1x the baseline's
latency. The goal: the Pareto search finds a net within 0.5 points of the
accuracy-only search's best accuracy at <= 1.1x the baseline's latency.

Writes benchmarks/results/hardware_search.json and docs/hardware_search.md
(`hardware_search_<dataset>` for a dataset other than mnist1d).
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from keras_bnn_af.searchers import run_search

ROOT = Path(__file__).resolve().parent
#: mode -> (objectives, latency budget in baseline latencies or None).
MODES = {
    "accuracy only": (["val_accuracy"], None),
    "Pareto": (["val_accuracy", "latency"], None),
    "Pareto, budget 1.1x": (["val_accuracy", "latency"], 1.1),
}
PARETO_MODES = [mode for mode, (objectives, _) in MODES.items() if len(objectives) > 1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-samples", type=int, default=2000)
    parser.add_argument("--dataset", default="mnist1d")
    parser.add_argument("--device-model", default="host")
    args = parser.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in args.seeds:
            baseline_ms = None
            for mode, (objectives, budget) in MODES.items():
                budget_ms = budget and budget * baseline_ms
                runs.append(run(args, seed, mode, objectives, budget_ms, Path(folder)))
                baseline_ms = runs[-1]["baseline_latency_ms"]
                print(json.dumps(runs[-1]), flush=True)
    result = {"settings": vars(args), "runs": runs, "summary": summarize(runs)}
    name = "hardware_search" + ("" if args.dataset == "mnist1d" else f"_{args.dataset}")
    (ROOT / "results" / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    text = render(result)
    (ROOT.parent / "docs" / f"{name}.md").write_text(text)
    print(text)
    return 0


def run(
    args,
    seed: int,
    mode: str,
    objectives: list[str],
    budget_ms: float | None,
    folder: Path,
) -> dict:
    settings = {
        "space": "arch",
        "dataset": args.dataset,
        "max_trials": args.budget,
        "epochs": args.epochs,
        "max_samples": args.max_samples,
        "seed": seed,
        "objectives": objectives,
        "device_model": args.device_model,
        "latency_budget_ms": budget_ms,
    }
    start = time.perf_counter()
    result = run_search(settings, folder / f"{mode.replace(' ', '_')}_{seed}"[:40])
    pareto = json.loads((result.out_dir / "results.json").read_text())["pareto"]
    near = pareto["best_near_baseline"]
    return {
        "seed": seed,
        "mode": mode,
        "minutes": round((time.perf_counter() - start) / 60, 1),
        "completed": result.completed,
        "best_accuracy": result.leaderboard[0]["score"] if result.leaderboard else None,
        "hypervolume": round(pareto["hypervolume"], 5),
        "baseline_latency_ms": pareto["baseline_latency_ms"],
        "best_near_baseline": near and near["score"],
        "best_near_baseline_ms": near and near["latency_ms"],
        "front_size": len(pareto["front"]),
    }


def summarize(runs: list[dict]) -> dict:
    summary = {}
    for mode in MODES:
        mine = [r for r in runs if r["mode"] == mode]
        summary[mode] = {
            key: _mean_std([r[key] for r in mine if r[key] is not None])
            for key in ("best_accuracy", "hypervolume", "best_near_baseline")
        }
    by_seed = {}
    for r in runs:
        by_seed.setdefault(r["seed"], {})[r["mode"]] = r
    for mode in PARETO_MODES:
        gaps = [
            None
            if row[mode]["best_near_baseline"] is None  # no trial that fast
            else round(
                100 * row["accuracy only"]["best_accuracy"]
                - 100 * row[mode]["best_near_baseline"],
                2,
            )
            for row in by_seed.values()
        ]
        summary[mode]["gap_points"] = gaps
        summary[mode]["goal_met_seeds"] = sum(
            gap is not None and gap <= 0.5 for gap in gaps
        )
    return summary


def _mean_std(values: list[float]) -> list[float] | None:
    if not values:
        return None
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return [round(statistics.mean(values), 4), round(spread, 4)]


def render(result: dict) -> str:
    s, summary = result["settings"], result["summary"]
    lines = [
        "# Accuracy-only against Pareto search (arch space)",
        "",
        f"Generated by `python benchmarks/hardware_search.py`: {s['dataset']}, "
        f"`--space arch`, {s['budget']} trials of {s['epochs']} epoch(s), at most "
        f"{s['max_samples']} examples per split, seeds {s['seeds']}; every trial's "
        f"latency predicted by the `{s['device_model']}` profile (x86 host latency "
        "ranks models on this host only). Hypervolume reference point: accuracy 0, "
        "latency 2x the baseline (the dataset's reference net with `ste_sign`). "
        "Mean +- std over seeds.",
        "",
        "| search | best validation accuracy | hypervolume | best accuracy at <= 1.1x "
        "baseline latency |",
        "|---|---|---|---|",
    ]
    for mode in MODES:
        row = summary[mode]
        lines.append(
            f"| {mode} | {_shown(row['best_accuracy'])} | {_shown(row['hypervolume'])} "
            f"| {_shown(row['best_near_baseline'])} |"
        )
    lines += [
        "",
        "Per seed, the accuracy-only search's best minus the best at <= 1.1x the "
        "baseline's latency, in points (goal: <= 0.5; None: no trial of that search "
        "ran within 1.1x the baseline's latency):",
        "",
    ]
    for mode in PARETO_MODES:
        gaps = summary[mode]["gap_points"]
        lines.append(
            f"- {mode}: {gaps} (met on {summary[mode]['goal_met_seeds']} of "
            f"{len(gaps)} seeds)"
        )
    lines += [
        "",
        "| seed | search | minutes | completed | best accuracy | hypervolume "
        "| best at <= 1.1x (ms) | front |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        near = (
            f"{r['best_near_baseline']:.4f} ({r['best_near_baseline_ms']:.3g})"
            if r["best_near_baseline"] is not None
            else "none"
        )
        lines.append(
            f"| {r['seed']} | {r['mode']} | {r['minutes']} | {r['completed']} "
            f"| {r['best_accuracy']:.4f} | {r['hypervolume']:.4f} | {near} "
            f"| {r['front_size']} |"
        )
    return "\n".join(lines) + "\n"


def _shown(pair) -> str:
    return "n/a" if pair is None else f"{pair[0]:.4f} +- {pair[1]:.4f}"


if __name__ == "__main__":
    raise SystemExit(main())
