"""Accuracy against latency in the search job: objectives, baseline, Pareto results.

```python
run_search({"space": "gaaf", "objectives": ["val_accuracy", "latency"],
            "device_model": "rpi4b", "latency_budget_ms": 2.0}, "searches/hw")
```

Every trial reports `latency_ms` (`latency_objective.TrialLatency`: predicted
by a `LatencyModel` profile, or measured on this host) when the search has a
latency objective, a device model or a measurement. With `"latency"` among the
objectives the search is a `ParetoSearch`; otherwise latency is only recorded,
which lets an accuracy-only search be judged on the same axes.

The **baseline** is the search's proxy network (`SearchConfig.model`) with
`ste_sign` binarizers, its latency taken the same way at the start of the
search. Results measure a search against it:

- the **Pareto front** of the completed trials (accuracy up, latency down);
- its **hypervolume** with the reference point (accuracy 0, latency
  2 x baseline): the area of the accuracy-latency plane the front dominates;
- the **best accuracy within 1.1 x the baseline's latency** (and within the
  latency budget, when one is set).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras_tuner

from keras_bnn_af import models, plots
from keras_bnn_af.searchers import pareto
from keras_bnn_af.searchers.latency_objective import LATENCY_METRIC, TrialLatency

__all__ = [
    "OBJECTIVES",
    "baseline_latency",
    "pareto_arguments",
    "pareto_markdown",
    "pareto_summary",
    "trial_latency",
]

#: `--objectives` name -> the keras-tuner objective.
OBJECTIVES = {
    "val_accuracy": keras_tuner.Objective("val_accuracy", "max"),
    "latency": keras_tuner.Objective(LATENCY_METRIC, "min"),
}
#: The hypervolume's reference latency, in baseline latencies.
REFERENCE_LATENCY = 2.0
#: "Within the baseline's latency" means at most this many baseline latencies.
NEAR_BASELINE = 1.1


def check_objectives(objectives) -> tuple[str, ...]:
    """The objectives as a tuple of `OBJECTIVES` names, `val_accuracy` first."""
    names = tuple(objectives)
    unknown = [name for name in names if name not in OBJECTIVES]
    if (
        unknown
        or not names
        or names[0] != "val_accuracy"
        or len(set(names)) != len(names)
    ):
        raise ValueError(
            f"Search objectives {','.join(names)!r} are not supported; expected "
            "val_accuracy, optionally followed by latency (each once). Fix: pass "
            "--objectives val_accuracy or --objectives val_accuracy,latency."
        )
    return names


def is_pareto(config) -> bool:
    return "latency" in config.objectives


def trial_latency(config) -> TrialLatency | None:
    """The search's `TrialLatency`, or None when it records no latency."""
    if not (is_pareto(config) or config.device_model or config.measure):
        return None
    return TrialLatency(
        config.device_model or "host",
        threads=config.threads,
        measure=config.measure,
        binary=config.binary,
        identity=config.identity,
        known_hosts=config.known_hosts,
    )


def baseline_latency(latency: TrialLatency, config, splits) -> float:
    """The latency of the proxy network with `ste_sign` binarizers."""
    net = models.build(
        config.model,
        binarizer="ste_sign",
        input_shape=splits.input_shape,
        num_classes=splits.num_classes,
    )
    return float(latency(net))


def pareto_arguments(config, baseline_ms: float) -> dict[str, Any]:
    """`ParetoSearch`'s objectives, constraints and reference point."""
    return {
        "objectives": [OBJECTIVES[name] for name in config.objectives],
        "constraints": (
            {LATENCY_METRIC: config.latency_budget_ms}
            if config.latency_budget_ms
            else None
        ),
        "reference_point": {
            "val_accuracy": 0.0,
            LATENCY_METRIC: REFERENCE_LATENCY * baseline_ms,
        },
    }


def pareto_summary(
    trials: list[dict], baseline_ms: float, budget_ms: float | None
) -> dict[str, Any]:
    """Front, hypervolume and best accuracies near the baseline of trial records
    (`score`: validation accuracy, `latency_ms`)."""
    done = _measured(trials)
    points = [[-t["score"], t["latency_ms"]] for t in done]
    front = pareto.pareto_front(points) if done else []
    reference = [0.0, REFERENCE_LATENCY * baseline_ms]
    return {
        "baseline_latency_ms": baseline_ms,
        "latency_budget_ms": budget_ms,
        "reference_point": {"val_accuracy": 0.0, LATENCY_METRIC: reference[1]},
        "front": [done[i]["trial_id"] for i in front],
        "hypervolume": pareto.hypervolume(points, reference) if done else 0.0,
        "best_near_baseline": _best_within(done, NEAR_BASELINE * baseline_ms),
        "best_within_budget": _best_within(done, budget_ms) if budget_ms else None,
    }


def _best_within(trials: list[dict], limit_ms: float) -> dict | None:
    """The most accurate trial at most `limit_ms` (earliest on a tie)."""
    fast = [t for t in trials if t["latency_ms"] <= limit_ms]
    if not fast:
        return None
    best = max(fast, key=lambda t: t["score"])
    keys = ("trial_id", "score", "latency_ms", "af", "architecture")
    return {key: best[key] for key in keys if key in best}


def _candidate(record: dict) -> str:
    return record.get("architecture") or record["af"]


def pareto_markdown(summary: dict, trials: list[dict], latency_name: str) -> str:
    """The Pareto table (front, fastest first) and the summary, as markdown."""
    by_id = {t["trial_id"]: t for t in trials}
    front = sorted((by_id[i] for i in summary["front"]), key=lambda t: t["latency_ms"])
    base = summary["baseline_latency_ms"]
    lines = [
        "",
        f"## Pareto front (latency: {latency_name})",
        "",
        f"Baseline (the proxy net with `ste_sign`): {base:.4g} ms. Hypervolume "
        f"{summary['hypervolume']:.4g} (reference: accuracy 0, latency "
        f"{summary['reference_point'][LATENCY_METRIC]:.4g} ms).",
        "",
        "| candidate | validation accuracy | latency ms | vs baseline | trial |",
        "|---|---:|---:|---:|---|",
    ]
    lines += [
        f"| `{_candidate(t)}` | {t['score']:.4f} | {t['latency_ms']:.4g} "
        f"| {t['latency_ms'] / base:.2f}x | {t['trial_id']} |"
        for t in front
    ]
    for key, label in (
        ("best_near_baseline", f"at most {NEAR_BASELINE}x the baseline's latency"),
        ("best_within_budget", "within the latency budget"),
    ):
        best = summary[key]
        if key == "best_within_budget" and summary["latency_budget_ms"] is None:
            continue
        lines.append("")
        lines.append(
            f"Best {label}: `{_candidate(best)}`, {best['score']:.4f} at "
            f"{best['latency_ms']:.4g} ms."
            if best
            else f"Best {label}: none of the completed trials."
        )
    return "\n".join(lines) + "\n"


def write_pareto_plot(summary: dict, trials: list[dict], path: Path) -> Path:
    """`pareto.png`: every completed trial, the front, baseline and budget."""
    done = _measured(trials)
    ids = [t["trial_id"] for t in done]
    return plots.plot_pareto(
        [t["score"] for t in done],
        [t["latency_ms"] for t in done],
        [ids.index(i) for i in summary["front"]],
        path,
        baseline_ms=summary["baseline_latency_ms"],
        budget_ms=summary["latency_budget_ms"],
    )


def _measured(trials: list[dict]) -> list[dict]:
    """The completed trials with a score and a finite latency, in order."""
    return [
        t
        for t in trials
        if t["status"] == "COMPLETED"
        and t["score"] is not None
        and t.get("latency_ms") is not None
        and math.isfinite(t["latency_ms"])
    ]
