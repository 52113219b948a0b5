"""Search oracles on cheap synthetic objectives: GeneticOracle vs keras-tuner's.

    python benchmarks/search_oracles.py [--seeds 30] [--first-seed 0]
        [--bayesian-seeds 5] [--budget 60] [--population N]
        [--objectives gaaf3 mixed] [--jobs 1] [--sweep] [--no-save]
    python benchmarks/search_oracles.py --seeds 2 --budget 20 --bayesian-seeds 1 \
        --no-save   # smoke run, about 20 s

Method. No Keras training: each oracle (`GeneticOracle`, keras-tuner's
`RandomSearchOracle` and `BayesianOptimizationOracle`) is driven directly,
one trial at a time (`create_trial` -> `update_trial({"score": f(values)})` ->
`end_trial` with status COMPLETED), for exactly `--budget` trials, maximising a
deterministic synthetic score. Objectives (`--objectives`):

- `gaaf3`: GAAF's 3-gene genome `[a, b, op]`: `Choice`s over the 22 unary genes,
  the 22 unary genes and the 11 binary genes of `keras_bnn_af.af`
  (5,324 genomes). The score is a random landscape drawn from the seed: an
  additive effect per gene value (standard normal) plus a pairwise interaction
  per pair of genes (normal, std `PAIR_SCALE`), no noise.
- `gaaf6`: the same landscape over GAAF's 6-gene genome `[u1, u2, u3, u4, b1, b2]`
  (about 2.8e7 genomes).
- `mixed`: a mixed space (`Int`, stepped `Int`, `Float`, log `Float`, `Choice`,
  `Boolean`); each hyperparameter is encoded in `[0, 1]` (`value_to_prob`; a
  `Choice` through a random embedding of its values, so its order means nothing)
  and the score is minus a mild Rastrigin function around a random optimum.

Seed `s` fixes the landscape and every oracle's seed, so on one seed all
oracles search the same function. keras-tuner draws hyperparameter `i` of its
random oracles from `random.Random(seed + i)`, so the seeds `s` and `s + 1` would
give shifted copies of one stream (and seed 0 means "a random seed"): oracles get
`1 + s * SEED_STRIDE`. keras-tuner's BayesianOptimization costs 10-50 s of CPU
per 60-trial search here (against 0.2 s for the others), so by default it runs
on the first `--bayesian-seeds` seeds only (docs/search_oracles.md: 10 seeds).
A fourth row, "RandomSearch, other seed", is a second random search with
another seed on the same landscape: the control that shows what the metric
gives for a searcher exactly as good as random search.

Metric. On each seed, the target is RandomSearch's best score after the whole
budget `B`. An oracle's "trials needed" is the first trial (1-based) at which its
best-so-far score reaches the target, or `B + 1` when it never does. Reported per
oracle: the median over seeds of `trials needed / B` (goal for GeneticOracle:
<= 0.5), the share of seeds on which it reaches the target within `B`, and the
mean +- std over seeds of its final best score. RandomSearch itself always
reaches its own target; its median ratio is where it found its best (for
independent draws, uniform over the budget: about 0.5). An independent random
search reaches it on about half the seeds, its median ratio is about 1. With 30
seeds the median ratio is noisy (RandomSearch's own moves between about 0.4 and
0.6 from one set of seeds to another); the paired column "final - RS final"
(mean +- standard error over seeds of the oracle's final best minus
RandomSearch's) is the steadier comparison.

`--sweep` also runs other GeneticOracle settings (`SWEEP`) against the same
RandomSearch targets. The library defaults were chosen on seeds 0-259 (budgets
30, 60, 120); the committed run uses fresh seeds from 300. Writes
benchmarks/results/search_oracles.json and
docs/search_oracles.md (unless `--no-save`); the committed ones come from

    python benchmarks/search_oracles.py --sweep --first-seed 300 --bayesian-seeds 5
"""

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import keras_tuner as kt
import numpy as np
from threadpoolctl import threadpool_limits

from keras_bnn_af.af import BINARY_GENES, UNARY_GENES
from keras_bnn_af.searchers import GeneticConfig, GeneticOracle

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "search_oracles.json"
DOCS = ROOT.parent / "docs" / "search_oracles.md"
OBJECTIVE = kt.Objective("score", "max")
SEED_STRIDE = 1_000_003
OTHER_SEED_OFFSET = 500_001
PAIR_SCALE = 0.5
RASTRIGIN_AMPLITUDE = 2.0
RASTRIGIN_SPREAD = 5.0  # u - optimum in [-1, 1] maps to x in [-5, 5]
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "rmsprop", "nadam")
ORACLES = (
    "GeneticOracle",
    "RandomSearch",
    "BayesianOptimization",
    "RandomSearch, other seed",
)
BASELINE = "RandomSearch"
# GeneticOracle settings tried with --sweep, as overrides of the default ones.
SWEEP = (
    {},
    # GAAF's settings, the library defaults before adaptive ones:
    {"population_size": 10, "mutation_genes": (1, 3), "selection": "per_generation",
     "tournament_size": 3},
    {"selection": "per_generation"},
    {"selection": "elitism"},
    {"selection": "roulette"},
    {"tournament_size": 3},
    {"population_size": 3},
    {"population_size": 10},
    {"mutation_genes": (1, 2)},
    {"crossover": "uniform"},
    {"crossover_rate": 0.5},
)  # fmt: skip


# --- objectives -------------------------------------------------------------------


def genome_genes(name: str) -> list[tuple[str, tuple[str, ...]]]:
    """The genes of a GAAF genome objective: (hyperparameter name, values)."""
    if name == "gaaf3":
        return [("a", UNARY_GENES), ("b", UNARY_GENES), ("op", BINARY_GENES)]
    unary = [(f"u{i}", UNARY_GENES) for i in range(1, 5)]
    return unary + [(f"b{i}", BINARY_GENES) for i in range(1, 3)]


def genome_space(name: str) -> kt.HyperParameters:
    hp = kt.HyperParameters()
    for gene, values in genome_genes(name):
        hp.Choice(gene, list(values))
    return hp


def genome_score(name: str, seed: int):
    """Additive per-gene effects plus pairwise interactions, drawn from `seed`."""
    genes = genome_genes(name)
    rng = np.random.default_rng([len(genes), seed])
    index = [{value: i for i, value in enumerate(values)} for _, values in genes]
    single = [rng.normal(size=len(values)) for _, values in genes]
    pairs = {
        (i, j): rng.normal(scale=PAIR_SCALE, size=(len(genes[i][1]), len(genes[j][1])))
        for i in range(len(genes))
        for j in range(i + 1, len(genes))
    }

    def score(values: dict) -> float:
        position = [index[i][values[gene]] for i, (gene, _) in enumerate(genes)]
        total = sum(table[position[i]] for i, table in enumerate(single))
        total += sum(table[position[i], position[j]] for (i, j), table in pairs.items())
        return float(total)

    return score


def mixed_space() -> kt.HyperParameters:
    hp = kt.HyperParameters()
    hp.Int("depth", 1, 8)
    hp.Int("units", 16, 512, step=16)
    hp.Float("dropout", 0.0, 0.5)
    hp.Float("learning_rate", 1e-4, 1e-1, sampling="log")
    hp.Choice("optimizer", list(OPTIMIZERS))
    hp.Boolean("batchnorm")
    return hp


def mixed_score(seed: int):
    """Minus a Rastrigin function of the encoded values around a random optimum."""
    space = mixed_space().space
    rng = np.random.default_rng([99, seed])
    optimum = rng.uniform(0.1, 0.9, size=len(space))
    embedding = dict(zip(OPTIMIZERS, rng.uniform(size=len(OPTIMIZERS)), strict=True))

    def encode(hp, value) -> float:
        return embedding[value] if hp.name == "optimizer" else hp.value_to_prob(value)

    def score(values: dict) -> float:
        encoded = np.array([encode(hp, values[hp.name]) for hp in space])
        x = RASTRIGIN_SPREAD * (encoded - optimum)
        cost = x**2 + RASTRIGIN_AMPLITUDE * (1 - np.cos(2 * np.pi * x))
        return -float(cost.sum())

    return score


def objective(name: str, seed: int):
    """(search space, score function) of objective `name` on landscape `seed`."""
    if name == "mixed":
        return mixed_space(), mixed_score(seed)
    return genome_space(name), genome_score(name, seed)


OBJECTIVES = ("gaaf3", "gaaf6", "mixed")


# --- oracles ----------------------------------------------------------------------


def make_oracle(label: str, space, budget: int, seed: int, genetic: dict):
    oracle_seed = 1 + seed * SEED_STRIDE
    common = {"objective": OBJECTIVE, "max_trials": budget, "hyperparameters": space}
    if label == "GeneticOracle":
        return GeneticOracle(seed=oracle_seed, **genetic, **common)
    if label == "BayesianOptimization":
        return kt.oracles.BayesianOptimizationOracle(seed=oracle_seed, **common)
    if label == "RandomSearch, other seed":
        oracle_seed += OTHER_SEED_OFFSET
    return kt.oracles.RandomSearchOracle(seed=oracle_seed, **common)


def run_search(oracle, score, budget: int, folder: str) -> list[float]:
    """Best-so-far score after each of `budget` trials (flat if it stops early)."""
    oracle.verbose = 0
    oracle._set_project_dir(folder, "project")
    scores = []
    while len(scores) < budget:
        trial = oracle.create_trial("tuner0")
        if trial.status != "RUNNING":
            break  # the space is exhausted
        scores.append(score(trial.hyperparameters.values))
        oracle.update_trial(trial.trial_id, {"score": scores[-1]})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    best = np.maximum.accumulate(scores).tolist()
    return best + [best[-1]] * (budget - len(best))


def search_curve(label, name, seed, budget, genetic) -> tuple[list[float], float]:
    space, score = objective(name, seed)
    oracle = make_oracle(label, space, budget, seed, genetic)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        curve = run_search(oracle, score, budget, folder)
    return curve, time.perf_counter() - start


def run_seed(name: str, seed: int, labels, budget: int, genetic: dict, sweep) -> dict:
    """The oracles `labels` (and every sweep setting) on landscape `seed` of `name`."""
    warnings.filterwarnings("ignore")  # sklearn's GP convergence warnings
    start = time.perf_counter()
    with threadpool_limits(1):  # tiny GP matrices: BLAS threads only cost time
        runs = {
            label: search_curve(label, name, seed, budget, genetic) for label in labels
        }
        swept = [
            search_curve("GeneticOracle", name, seed, budget, {**genetic, **setting})
            for setting in sweep
        ]
    return {
        "curves": {label: curve for label, (curve, _) in runs.items()},
        "seconds": {label: seconds for label, (_, seconds) in runs.items()},
        "sweep": [curve for curve, _ in swept],
        "progress": f"{name} seed {seed}: {time.perf_counter() - start:.1f} s",
    }


# --- metric -----------------------------------------------------------------------


def trials_needed(curve: list[float], target: float) -> int:
    """First trial (1-based) whose best-so-far reaches `target`, else len + 1."""
    for trial, best in enumerate(curve, start=1):
        if best >= target:
            return trial
    return len(curve) + 1


def summarize(curves: list[list[float]], targets: list[float], budget: int) -> dict:
    needed = [trials_needed(c, t) for c, t in zip(curves, targets, strict=True)]
    finals = [c[-1] for c in curves]
    gains = [final - target for final, target in zip(finals, targets, strict=True)]
    spread = statistics.stdev(gains) / math.sqrt(len(gains)) if len(gains) > 1 else 0
    return {
        "seeds": len(curves),
        "median_ratio": round(statistics.median(needed) / budget, 3),
        "reached_share": round(sum(n <= budget for n in needed) / len(needed), 3),
        "final_mean": round(statistics.mean(finals), 4),
        "final_std": round(statistics.pstdev(finals), 4),
        "gain_mean": round(statistics.mean(gains), 4),
        "gain_se": round(spread, 4),
        "trials_needed": needed,
        "mean_curve": [round(float(v), 4) for v in np.mean(curves, axis=0)],
    }


def summarize_objective(name: str, per_seed: list[dict], args) -> dict:
    targets = [run["curves"][BASELINE][-1] for run in per_seed]
    rows = []
    for label in ORACLES:
        ran = [i for i, run in enumerate(per_seed) if label in run["curves"]]
        if not ran:
            continue
        curves = [per_seed[i]["curves"][label] for i in ran]
        seconds = sum(per_seed[i]["seconds"][label] for i in ran)
        summary = summarize(curves, [targets[i] for i in ran], args.budget)
        row = {"oracle": label, **summary}
        rows.append({**row, "seconds": round(seconds, 1)})
    sweep = []
    for index, setting in enumerate(args.sweep_settings):
        curves = [run["sweep"][index] for run in per_seed]
        sweep.append({"setting": setting, **summarize(curves, targets, args.budget)})
    return {"objective": name, "rows": rows, "sweep": sweep}


# --- report -----------------------------------------------------------------------


def ratio_text(row: dict) -> str:
    ratio = row["median_ratio"]
    return f"{ratio:.2f}" if ratio <= 1 else "not reached"


def setting_text(setting: dict) -> str:
    if not setting:
        return "default"
    return ", ".join(f"{key}={value}" for key, value in setting.items())


COLUMNS = (
    "| seeds | median trials to RS best / budget | seeds reaching it "
    "| final best (mean ± std) | final - RS final (mean ± s.e.) |"
)


def metric_cells(row: dict) -> str:
    return (
        f"| {row['seeds']} | {ratio_text(row)} | {100 * row['reached_share']:.0f} % "
        f"| {row['final_mean']:.3f} ± {row['final_std']:.3f} "
        f"| {row['gain_mean']:+.3f} ± {row['gain_se']:.3f} |"
    )


def oracle_table(result: dict) -> list[str]:
    lines = [f"| oracle {COLUMNS} seconds |", "|---" * 7 + "|"]
    lines += [
        f"| {r['oracle']} {metric_cells(r)} {r['seconds']:.1f} |"
        for r in result["rows"]
    ]
    return lines


def sweep_table(result: dict) -> list[str]:
    lines = [f"| GeneticOracle setting {COLUMNS}", "|---" * 6 + "|"]
    lines += [
        f"| {setting_text(r['setting'])} {metric_cells(r)}" for r in result["sweep"]
    ]
    return lines


def render(report: dict) -> str:
    settings = report["settings"]
    lines = [
        "# Search oracles on synthetic objectives",
        "",
        f"Generated by `{report['command']}` "
        f"({report['seconds']:.0f} s on a shared 2-core x86 host); method, "
        "objectives and metric are described in the docstring of "
        "`benchmarks/search_oracles.py`.",
        "",
        f"- Budget: {settings['budget']} trials per oracle and seed; "
        f"{settings['seeds']} seeds (landscapes) per objective, from seed "
        f"{settings['first_seed']}; "
        f"BayesianOptimization on the first {settings['bayesian_seeds']} only "
        "(its targets and ratios on those seeds).",
        "- GeneticOracle: library defaults "
        f"({json.dumps(settings.get('genetic_defaults', {}))}; None = adaptive: "
        "population and mutated genes from the space and the budget, see "
        "`keras_bnn_af.searchers.genetic_config`), overridden by "
        f"{json.dumps(settings['genetic'])}.",
        "- BayesianOptimization: keras-tuner defaults (3 x dimensions random "
        "initial points, alpha 1e-4, beta 2.6).",
        "- Target per seed: RandomSearch's final best. Ratio = trials needed to "
        "reach it / budget, median over seeds; 'not reached' when the median "
        "seed never reaches it. Goal for GeneticOracle: <= 0.50.",
        "- 'RandomSearch, other seed' is a control: a second, independent random "
        "search. 'final - RS final' is paired per seed: the oracle's final best "
        "minus RandomSearch's.",
    ]
    for result in report["objectives"]:
        lines += ["", f"## {result['objective']}", "", *oracle_table(result)]
        if result["sweep"]:
            lines += [
                "",
                "GeneticOracle settings (`--sweep`; same seeds and targets; a "
                "setting picked from this table is tuned on these seeds, so check "
                "it on others with `--first-seed`):",
                "",
            ]
            lines += sweep_table(result)
    return "\n".join(lines) + "\n"


# --- main -------------------------------------------------------------------------


def oracles_for(seed: int, args) -> list[str]:
    """Every oracle, but BayesianOptimization only on the first seeds (slow)."""
    if seed < args.first_seed + args.bayesian_seeds:
        return list(ORACLES)
    return [label for label in ORACLES if label != "BayesianOptimization"]


def run_all(args) -> list[dict]:
    tasks = [
        (name, seed, oracles_for(seed, args))
        for name in args.objectives
        for seed in range(args.first_seed, args.first_seed + args.seeds)
    ]
    genetic = {} if args.population is None else {"population_size": args.population}
    common = (args.budget, genetic, args.sweep_settings)
    done = []
    if args.jobs == 1:
        for task in tasks:
            done.append(run_seed(*task, *common))
            print(done[-1]["progress"], flush=True)
    else:
        context = get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            futures = [pool.submit(run_seed, *task, *common) for task in tasks]
            for future in futures:
                done.append(future.result())
                print(done[-1]["progress"], flush=True)
    return [
        summarize_objective(name, done[i * args.seeds : (i + 1) * args.seeds], args)
        for i, name in enumerate(args.objectives)
    ]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds", type=int, default=30, help="landscapes per objective"
    )
    parser.add_argument("--first-seed", type=int, default=0, help="seeds S..S+N-1")
    parser.add_argument("--budget", type=int, default=60, help="trials per search")
    parser.add_argument(
        "--bayesian-seeds",
        type=int,
        default=5,
        help="run BayesianOptimization on the first K seeds only (~10-50 s a search)",
    )
    parser.add_argument(
        "--population", type=int, default=None, help="default: adaptive (library)"
    )
    parser.add_argument(
        "--objectives", nargs="+", choices=OBJECTIVES, default=["gaaf3", "mixed"]
    )
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--sweep", action="store_true", help="other GA settings")
    parser.add_argument("--no-save", action="store_true", help="print only")
    args = parser.parse_args(argv)
    args.sweep_settings = [dict(s) for s in SWEEP] if args.sweep else []
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    start = time.perf_counter()
    results = run_all(args)
    report = {
        "command": " ".join(["python benchmarks/search_oracles.py", *argv]),
        "seconds": round(time.perf_counter() - start, 1),
        "settings": {
            "seeds": args.seeds,
            "first_seed": args.first_seed,
            "budget": args.budget,
            "bayesian_seeds": min(args.bayesian_seeds, args.seeds),
            "objectives": args.objectives,
            "genetic": {}
            if args.population is None
            else {"population_size": args.population},
            "genetic_defaults": GeneticConfig().to_json(),
            "seed_stride": SEED_STRIDE,
            "pair_scale": PAIR_SCALE,
            "rastrigin_amplitude": RASTRIGIN_AMPLITUDE,
        },
        "objectives": results,
    }
    print(render(report))
    if not args.no_save:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=1))
        DOCS.write_text(render(report))
        print(f"wrote {RESULTS} and {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
