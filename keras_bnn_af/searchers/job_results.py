"""The search job's results: `results.json`, `leaderboard.md` and the figures.

`write_results` reads every trial of the oracle, in start order, into a record
(`trial_id`, `status`, `score`: the best validation accuracy, `af` or
`architecture`: what the candidate is, `latency_ms` when recorded, `values`),
ranks the completed ones by score, and writes the files the search job
promises (see `keras_bnn_af.searchers.job`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keras_bnn_af import af, plots
from keras_bnn_af.quantizers import GAAF
from keras_bnn_af.searchers import hardware_aware
from keras_bnn_af.searchers.af_search import AF_VALUE, genome_of
from keras_bnn_af.searchers.genetic_config import GeneticConfig
from keras_bnn_af.searchers.latency_objective import LATENCY_METRIC, TrialLatency

if TYPE_CHECKING:
    from keras_bnn_af.searchers.job import SearchConfig

__all__ = [
    "RESULTS_FILE",
    "SearchResult",
    "leaderboard_markdown",
    "candidate",
    "write_results",
]

RESULTS_FILE = "results.json"
OBJECTIVE_NAME = "val_accuracy"

#: The spaces whose candidates are architectures (described by a formula), not AFs.
ARCHITECTURE_SPACES = ("arch", "cell")


@dataclass
class SearchResult:
    """A finished (or stopped) search: its folder, ranking and counts."""

    out_dir: Path
    leaderboard: list[dict[str, Any]]
    completed: int
    failed: int
    trials: list[dict[str, Any]]
    skipped: list[dict[str, Any]] = field(default_factory=list)


def write_results(
    oracle,
    out: Path,
    config: SearchConfig,
    top: int = 3,
    *,
    latency: TrialLatency | None = None,
    baseline: float | None = None,
    describe: Callable[[dict], str] | None = None,
) -> SearchResult:
    """Writes `results.json`, `leaderboard.md`, `fitness.png` and `best_*.png`
    (the best AFs; not for architectures); with `latency`, also the Pareto
    front (`results.json["pareto"]`, a table in `leaderboard.md`, `pareto.png`;
    see `hardware_aware`). `describe` names an architecture from its values
    (`ArchHyperModel.formula`); without it a candidate is its AF."""
    trials = [_trial_record(trial, describe) for trial in _in_start_order(oracle)]
    scored = [
        t for t in trials if t["status"] == "COMPLETED" and t["score"] is not None
    ]
    leaderboard = sorted(scored, key=lambda t: (-t["score"], t["trial_id"]))
    result = SearchResult(
        out_dir=out,
        leaderboard=leaderboard,
        completed=len(scored),
        failed=sum(t["status"] in ("FAILED", "INVALID") for t in trials),
        trials=trials,
        skipped=oracle.skipped,
    )
    summary, pareto_text = None, ""
    if latency is not None:
        summary = hardware_aware.pareto_summary(
            trials, baseline, config.latency_budget_ms
        )
        pareto_text = hardware_aware.pareto_markdown(summary, trials, latency.name)
        hardware_aware.write_pareto_plot(summary, trials, out / "pareto.png")
    (out / RESULTS_FILE).write_text(
        json.dumps(
            {
                "config": config.to_json(),
                "pareto": summary,
                "genetic": oracle.config.to_json(),
                "objective": OBJECTIVE_NAME,
                "completed": result.completed,
                "failed": result.failed,
                "skipped": len(result.skipped),
                "skipped_candidates": result.skipped,
                "leaderboard": leaderboard,
                "trials": trials,
            },
            indent=2,
        )
    )
    (out / "leaderboard.md").write_text(
        leaderboard_markdown(leaderboard, config, oracle.config, len(result.skipped))
        + pareto_text
    )
    plots.plot_search_history(
        [t["score"] for t in trials if t["status"] == "COMPLETED"], out / "fitness.png"
    )
    for rank, entry in enumerate(leaderboard[:top] if describe is None else [], 1):
        plots.plot_binarizer(
            GAAF(entry["af"]),
            out / f"best_{rank}.png",
            title=f"#{rank}: {entry['af']} (val. accuracy {entry['score']:.4f})",
        )
    return result


def _in_start_order(oracle) -> list:
    order = {trial_id: index for index, trial_id in enumerate(oracle.start_order)}
    return sorted(oracle.trials.values(), key=lambda t: order.get(t.trial_id, 1e9))


def _trial_record(trial, describe: Callable[[dict], str] | None) -> dict[str, Any]:
    values = dict(trial.hyperparameters.values)
    score = (
        trial.score if trial.score is not None and math.isfinite(trial.score) else None
    )
    named = {"af": values.get(AF_VALUE) or _gaaf_formula(values)}
    if describe is not None:
        named = {"af": None, "architecture": describe(values)}
    return {
        "trial_id": trial.trial_id,
        "status": str(trial.status),
        "score": score,
        **named,
        "latency_ms": _last(trial, LATENCY_METRIC),
        "values": values,
        "message": trial.message,
    }


def _last(trial, metric: str) -> float | None:
    if not trial.metrics.exists(metric):
        return None
    value = trial.metrics.get_last_value(metric)
    return float(value) if value is not None and math.isfinite(value) else None


def candidate(record: dict) -> str:
    """What a trial record's candidate is: its architecture or its AF."""
    return record.get("architecture") or record["af"]


def _gaaf_formula(values: dict) -> str | None:
    try:
        return str(af.from_genome(genome_of(values)))
    except (KeyError, ValueError):
        return None


def leaderboard_markdown(
    leaderboard: list[dict],
    config: SearchConfig,
    genetic: GeneticConfig,
    skipped: int = 0,
) -> str:
    lines = [
        f"# {config.space} search on {config.dataset}",
        "",
        f"Proxy `{config.model}`, {config.epochs} epoch(s) per candidate, population "
        f"{genetic.population_size}, {genetic.mutation_genes[0]}-"
        f"{genetic.mutation_genes[1]} mutated gene(s), {genetic.selection} selection, "
        f"seed {config.seed}; fitness = best validation accuracy (the test split is "
        f"never used). {skipped} non-viable candidate(s) skipped untrained.",
        "",
        f"| rank | {'architecture' if config.space in ARCHITECTURE_SPACES else 'AF'} "
        "| validation accuracy | trial |",
        "|---:|---|---:|---|",
    ]
    lines += [
        f"| {rank} | `{candidate(entry)}` | {entry['score']:.4f} "
        f"| {entry['trial_id']} |"
        for rank, entry in enumerate(leaderboard, start=1)
    ]
    return "\n".join(lines) + "\n"
