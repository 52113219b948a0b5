"""GAAF activation search: oracles compared, and the found AFs retrained.

    python benchmarks/gaaf_search.py oracles [--seeds 0 1 2 3 4] [--budget 20]
        [--oracles genetic random random_filtered bayesian]
    python benchmarks/gaaf_search.py retrain SEARCH_DIR [SEARCH_DIR ...] [--top 3]

`oracles` runs the GAAF search (`GAAFHyperModel`, conv1d on MNIST-1D, fitness =
best validation accuracy) at the same trial budget, once per seed, with
`GeneticSearch` (library defaults: adaptive population and mutation, and
non-viable AFs skipped untrained), keras-tuner's `RandomSearch` (trains every
draw), `random_filtered` (random draws with the same viability filter: a
`GeneticOracle` whose population is the whole budget, so every trial is a random
genome) and optionally keras-tuner's `BayesianOptimization`. It reports the
trials each needs to reach RandomSearch's final best of that seed (the budget + 1
when it never does), as a share of the budget, and the final best paired with
RandomSearch's. Writes benchmarks/results/gaaf_search_oracles.json.

`retrain` takes folders written by `keras-bnn-af search`, retrains the `--top`
distinct AFs of each with several seeds, next to `ste_sign` and GAAF `sin(x)`,
with the settings of `benchmarks/binarizers.py accuracy` (MNIST-1D: conv1d, 10
epochs, Adam lr 1e-2; MNIST: binarynet, 1 epoch, lr 1e-3), and reports test
accuracy (the search never saw the test split). Writes
benchmarks/results/gaaf_search_retrain.json.

`docs` renders docs/gaaf_search.md from both result files.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import keras_tuner as kt

from keras_bnn_af import data, training
from keras_bnn_af._files import write_atomic
from keras_bnn_af._keras import keras
from keras_bnn_af.searchers import GAAFHyperModel, GeneticSearch

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
DOCS = ROOT.parent / "docs" / "gaaf_search.md"
OBJECTIVE = kt.Objective("val_accuracy", "max")
RETRAIN_SETTINGS = {
    "mnist1d": {"model": "conv1d", "epochs": 10, "learning_rate": 1e-2},
    "mnist": {"model": "binarynet", "epochs": 1, "learning_rate": 1e-3},
}
REFERENCES = {"ste_sign": "ste_sign", "GAAF sin(x) (catalog)": "gaaf:sin_x"}


# --- oracles -------------------------------------------------------------------------


def oracles(args) -> dict:
    splits = data.load("mnist1d", batch_size=64, max_samples=args.max_samples, seed=0)
    runs = []
    result = {"settings": vars(args) | {"command": _command()}, "runs": runs}
    for seed in args.seeds:
        curves = {}
        skipped = {}
        for name in args.oracles:
            start = time.perf_counter()
            scores, skipped[name] = _search_scores(name, seed, splits, args)
            curves[name] = _best_so_far(scores)
            print(
                f"seed {seed} {name}: best {curves[name][-1]:.4f} "
                f"({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
        target = curves["random"][-1]
        runs.append(
            {
                "seed": seed,
                "best_so_far": curves,
                "skipped": skipped,
                "trials_to_random_best": {
                    name: _first_reaching(curve, target, args.budget)
                    for name, curve in curves.items()
                },
            }
        )
        # Saved per seed: an interrupted run keeps the seeds it finished.
        write_atomic(RESULTS / "gaaf_search_oracles.json", json.dumps(result, indent=2))
    return result


def _search_scores(name: str, seed: int, splits, args) -> tuple[list[float], int]:
    """Every trial's score in start order, and the candidates skipped untrained."""
    keras.backend.clear_session()  # else graphs pile up over searches (6 GB, slower)
    keras.utils.set_random_seed(seed)
    hypermodel = GAAFHyperModel(
        model="conv1d",
        input_shape=splits.input_shape,
        num_classes=splits.num_classes,
        epochs=args.epochs,
        steps_per_epoch=-(-splits.num_examples["train"] // 64),
    )
    common = {
        "objective": OBJECTIVE,
        "max_trials": args.budget,
        "seed": seed,
        "max_consecutive_failed_trials": args.budget,
        "overwrite": True,
        "project_name": name,
    }
    with tempfile.TemporaryDirectory() as folder:
        if name == "genetic":
            settings = (
                {} if args.population is None else {"population_size": args.population}
            )
            tuner = GeneticSearch(hypermodel, directory=folder, **settings, **common)
        elif name == "random_filtered":
            tuner = GeneticSearch(
                hypermodel, population_size=args.budget, directory=folder, **common
            )
        elif name == "random":
            tuner = kt.RandomSearch(hypermodel, directory=folder, **common)
        else:
            tuner = kt.BayesianOptimization(hypermodel, directory=folder, **common)
        tuner.search(splits.train, validation_data=splits.validation, verbose=0)
        order = {t: i for i, t in enumerate(tuner.oracle.start_order)}
        trials = sorted(tuner.oracle.trials.values(), key=lambda t: order[t.trial_id])
        skipped = len(getattr(tuner.oracle, "skipped", []))
        return [t.score if t.score is not None else 0.0 for t in trials], skipped


def _best_so_far(scores: list[float]) -> list[float]:
    best, curve = float("-inf"), []
    for score in scores:
        best = max(best, score)
        curve.append(round(best, 4))
    return curve


def _first_reaching(curve: list[float], target: float, budget: int) -> int:
    return next((i + 1 for i, best in enumerate(curve) if best >= target), budget + 1)


# --- retraining ----------------------------------------------------------------------


def retrain(args) -> dict:
    rows = []
    for folder in args.searches:
        result = json.loads((Path(folder) / "results.json").read_text())
        config = result["config"]
        dataset = config["dataset"]
        found = _top_formulas(result["leaderboard"], args.top)
        candidates = {**REFERENCES}
        for rank, (formula, score) in enumerate(found, start=1):
            candidates[f"#{rank} {formula} (val {score:.4f})"] = {
                "class_name": "GAAF",
                "config": {"af": formula},
            }
        for label, spec in candidates.items():
            scores = []
            for seed in args.seeds:
                train = training.TrainConfig(
                    dataset=dataset,
                    binarizer=spec,
                    seed=seed,
                    **RETRAIN_SETTINGS[dataset],
                )
                scores.append(training.train(train, verbose=0).metrics["test_accuracy"])
            rows.append(
                {
                    "dataset": dataset,
                    "binarizer": label,
                    "test_accuracy": scores,
                    "mean": statistics.mean(scores),
                    "std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
                }
            )
            print(f"{dataset} {label}: {rows[-1]['mean']:.4f}", flush=True)
        rows.append({"dataset": dataset, "search": _search_summary(result)})
    return {"settings": {"seeds": args.seeds, "top": args.top}, "rows": rows}


def _top_formulas(leaderboard: list[dict], top: int) -> list[tuple[str, float]]:
    found = {}
    for entry in leaderboard:
        found.setdefault(entry["af"], entry["score"])
    return list(found.items())[:top]


def _search_summary(result: dict) -> dict:
    config = result["config"]
    return {
        "trials": len(result["trials"]),
        "completed": result["completed"],
        "failed": result["failed"],
        "population": config.get("genetic", config).get("population_size"),
        "epochs": config["epochs"],
        "model": config["model"],
        "learning_rate": config["learning_rate"],
        "best": result["leaderboard"][0]["af"] if result["leaderboard"] else None,
    }


# --- docs ----------------------------------------------------------------------------


def render() -> str:
    lines = ["# GAAF activation search", ""]
    oracle_file = RESULTS / "gaaf_search_oracles.json"
    if oracle_file.exists():
        lines += _oracle_lines(json.loads(oracle_file.read_text()))
    retrain_file = RESULTS / "gaaf_search_retrain.json"
    if retrain_file.exists():
        lines += _retrain_lines(json.loads(retrain_file.read_text()))
    return "\n".join(lines) + "\n"


def _oracle_lines(result: dict) -> list[str]:
    settings, runs = result["settings"], result["runs"]
    budget = settings["budget"]
    lines = [
        "## GeneticSearch vs RandomSearch on the GAAF space",
        "",
        f"Generated by `{settings['command']}`: the GAAF genome "
        f"space on MNIST-1D (conv1d, {settings['epochs']} epochs per candidate, "
        f"{settings['max_samples']} examples per split), {budget} trials per "
        f"search, GeneticSearch population {settings['population'] or 'adaptive'}, "
        f"seeds {settings['seeds']}. `genetic` and `random_filtered` skip AFs whose "
        "sign is (nearly) constant on normalized inputs before training them "
        "(`keras_bnn_af.af.viability_problem`); skipped candidates cost no trial. "
        f"Trials to reach RandomSearch's final best of the same seed ({budget + 1} "
        "= never), as a share of the budget; 'final - random' is paired per seed "
        "(mean ± standard error).",
        "",
        "| oracle | median trials to RandomSearch's best | share of budget "
        "| seeds reaching it | final best (mean ± std) | final - random "
        "| skipped per search |",
        "|---|---:|---:|---:|---|---|---:|",
    ]
    randoms = [run["best_so_far"]["random"][-1] for run in runs]
    for name in runs[0]["best_so_far"]:
        needed = [run["trials_to_random_best"][name] for run in runs]
        finals = [run["best_so_far"][name][-1] for run in runs]
        gains = [f - r for f, r in zip(finals, randoms, strict=True)]
        skipped = [run.get("skipped", {}).get(name, 0) for run in runs]
        reached = sum(n <= budget for n in needed)
        std = statistics.stdev(finals) if len(finals) > 1 else 0.0
        error = statistics.stdev(gains) / len(gains) ** 0.5 if len(gains) > 1 else 0.0
        lines.append(
            f"| {name} | {statistics.median(needed):g} "
            f"| {statistics.median(needed) / budget:.0%} | {reached}/{len(runs)} "
            f"| {statistics.mean(finals):.4f} ± {std:.4f} "
            f"| {statistics.mean(gains):+.4f} ± {error:.4f} "
            f"| {statistics.mean(skipped):.1f} |"
        )
    return lines + [""]


def _retrain_lines(result: dict) -> list[str]:
    seeds = result["settings"]["seeds"]
    lines = [
        "## Found AFs retrained",
        "",
        "Generated by `python benchmarks/gaaf_search.py retrain SEARCH_DIR ...`: "
        f"the best distinct AFs of each search retrained with seeds {seeds} next "
        "to `ste_sign` and the catalog's `sin(x)`, with the settings of "
        "`benchmarks/binarizers.py accuracy`; test accuracy, mean ± std.",
        "",
    ]
    for row in result["rows"]:
        if "search" in row:
            s = row["search"]
            lines += [
                "",
                f"Search on {row['dataset']}: {s['trials']} trials ({s['completed']} "
                f"completed, {s['failed']} failed), population {s['population']}, "
                f"{s['model']}, {s['epochs']} epoch(s) per candidate, Adam lr "
                f"{s['learning_rate']}.",
                "",
            ]
    lines += ["| dataset | binarizer | test accuracy |", "|---|---|---|"]
    for row in result["rows"]:
        if "search" not in row:
            lines.append(
                f"| {row['dataset']} | {row['binarizer']} "
                f"| {row['mean']:.2%} ± {row['std']:.2%} |"
            )
    return lines


def _command() -> str:
    return " ".join(["python", "benchmarks/gaaf_search.py", *sys.argv[1:]])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    compare = commands.add_parser("oracles")
    compare.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    compare.add_argument("--budget", type=int, default=20)
    compare.add_argument(
        "--population", type=int, default=None, help="default: adaptive"
    )
    compare.add_argument(
        "--oracles",
        nargs="+",
        choices=["genetic", "random", "random_filtered", "bayesian"],
        default=["random", "genetic", "random_filtered"],
    )
    compare.add_argument("--epochs", type=int, default=3)
    compare.add_argument("--max-samples", type=int, default=1200)
    again = commands.add_parser("retrain")
    again.add_argument("searches", nargs="+")
    again.add_argument("--top", type=int, default=3)
    again.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    commands.add_parser("docs")
    args = parser.parse_args(argv)
    if args.command == "oracles" and "random" not in args.oracles:
        parser.error(
            f"--oracles {' '.join(args.oracles)} lacks 'random', whose final best is "
            "every other oracle's target; add random"
        )
    RESULTS.mkdir(exist_ok=True)
    if args.command != "docs":
        result = oracles(args) if args.command == "oracles" else retrain(args)
        result["settings"]["command"] = _command()
        name = f"gaaf_search_{args.command}.json"
        write_atomic(RESULTS / name, json.dumps(result, indent=2) + "\n")
    DOCS.write_text(render())
    print(f"wrote {DOCS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
