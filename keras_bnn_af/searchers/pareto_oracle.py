r"""Multi-objective genetic search: `GeneticOracle` with NSGA-II selection.

```python
import keras_tuner as kt
from keras_bnn_af.searchers.pareto_oracle import ParetoGeneticOracle

oracle = ParetoGeneticOracle(
    [kt.Objective("val_accuracy", "max"), kt.Objective("latency_ms", "min")],
    max_trials=60, seed=0, hyperparameters=hp,
    constraints={"latency_ms": 2.5},                  # optional hard bounds
    reference_point={"val_accuracy": 0.0, "latency_ms": 10.0},
)
...                                  # drive it with a keras_tuner.Tuner
oracle.pareto_front()                # the trials of the feasible first front
oracle.hypervolume()                 # the volume that front dominates
```

Everything else is `GeneticOracle`: the genome, crossover, mutation, no
duplicate genome, the seed, resumability and parallel workers. Only the order
of the trials changes, from one fitness to NSGA-II's crowded comparison
(`keras_bnn_af.searchers.pareto`, every objective minimized internally,
`"max"` ones negated).
"""

from __future__ import annotations

import inspect
import math
import numbers
import warnings
from typing import Any

import keras_tuner
import numpy as np
from keras_tuner.engine.metrics_tracking import infer_metric_direction
from keras_tuner.engine.trial import TrialStatus

from keras_bnn_af._errors import did_you_mean
from keras_bnn_af.searchers import operators, pareto
from keras_bnn_af.searchers.genetic import (
    GeneticOracle,
    GeneticSearch,
    _check_keywords,
)

__all__ = ["ParetoGeneticOracle", "ParetoSearch"]

_NAME = "ParetoGeneticOracle"
_EXAMPLE = (
    '[keras_tuner.Objective("val_accuracy", "max"), '
    'keras_tuner.Objective("latency_ms", "min")]'
)


class ParetoGeneticOracle(GeneticOracle):
    r"""Steady-state NSGA-II: `GeneticOracle` ranking trials by Pareto dominance.

    **Ranking.** The completed trials with a finite value for every objective
    are ranked by non-dominated front, then crowding distance (larger first),
    then start order: deterministic, whatever order parallel trials complete in.
    The population is the first `population_size` of them; parents win
    crowded-comparison tournaments of `tournament_size` contestants (2,
    NSGA-II's binary tournament, unless given; a `config` passed whole keeps its
    own), drawn with the oracle's seeded generator. `selection` must be
    `"tournament"`: elitism, roulette and per-generation selection rank by one
    fitness value, and the two "fittest" of a front are merely its extremes.

    **Constraints.** `constraints={"latency_ms": 2.5}` bounds an objective: an
    upper bound for a `"min"` objective, a lower bound for a `"max"` one. A
    trial's violation is the sum over the constraints of
    \\(\max(0, v - b) / |b|\\) (`"min"`) or \\(\max(0, b - v) / |b|\\)
    (`"max"`), divided by 1 instead of \\(|b|\\) when \\(b = 0\\): relative, so
    milliseconds and megabytes add up. Feasible trials (violation 0) rank before
    infeasible ones, and those by violation (Deb's constrained domination).

    **What keras-tuner sees.** `self.objective` is the first objective: a
    `Tuner` checks that `run_trial` / `HyperModel.fit` results hold it and picks
    a History's best epoch by it, and `trial.score` is its value (NaN, hence an
    INVALID trial, when any objective is NaN); the other objectives are checked
    when a trial ends. (keras-tuner's `MultiObjective` would score a sum such as
    `latency_ms - val_accuracy` and make a `Tuner` refuse results given as a
    dict unless they hold that sum as `"multi_objective"`.) A trial's value of
    an objective is its best reported value in that objective's direction: the
    value itself for one report per trial, as a `Tuner` sends. `get_best_trials`
    (hence `Tuner.get_best_models` / `get_best_hyperparameters`) returns the
    ranking above, then the other trials; `pareto_front()` is the answer to read.

    # Arguments
        objectives: 2 or more `keras_tuner.Objective`s;
            a bare name only when keras-tuner infers its direction
            (`"val_accuracy"`, `"val_loss"`, ...).
        max_trials: the number of trials to run at most, or None.
        constraints: `{objective name: bound}`, or None.
        reference_point: `{objective name: value}` for `hypervolume`, every
            objective, each worse than any trial that should count.
        **kwargs: as for `GeneticOracle` (`config`, `seed`, `hyperparameters`,
            `candidate_filter`, `GeneticConfig` fields, ...).

    # Raises
        ValueError: for fewer than 2 or duplicate objectives, a direction that
            cannot be inferred, a constraint or reference point that does not
            match the objectives or is not finite, a selection other than
            `"tournament"`, and what `GeneticOracle` refuses. (A trial that did
            not report every objective fails with a message; the search goes
            on.)
    """

    def __init__(
        self,
        objectives,
        max_trials: int | None = 50,
        *,
        constraints: dict[str, float] | None = None,
        reference_point: dict[str, float] | None = None,
        **kwargs,
    ):
        if "objective" in kwargs:
            raise ValueError(
                f"{_NAME} got objective={kwargs['objective']!s}; expected "
                f"objectives= (2 or more), e.g. {_EXAMPLE}. Rename the argument."
            )
        own = inspect.signature(GeneticOracle.__init__).parameters
        _check_keywords({k: v for k, v in kwargs.items() if k not in own}, _NAME)
        if kwargs.get("config") is None:
            kwargs.setdefault("tournament_size", 2)
        parsed = _objectives(objectives)
        super().__init__(objective=parsed[0], max_trials=max_trials, **kwargs)
        self._objectives = parsed
        if self.config.selection != "tournament":
            raise ValueError(
                f"{_NAME} got selection={self.config.selection!r}; "
                "expected 'tournament' (a crowded-comparison tournament): "
                "elitism, roulette and per_generation rank by a single fitness. "
                "Drop selection=, or use GeneticOracle for one objective."
            )
        self.constraints = _bounds(constraints, parsed, "constraints")
        self.reference_point = _bounds(reference_point, parsed, "reference_point", True)

    @property
    def objectives(self) -> list[keras_tuner.Objective]:
        return list(self._objectives)

    # --- the answers ------------------------------------------------------------

    def objective_values(self, trial) -> dict[str, float]:
        """`{name: value}`, each the best reported value in its direction (NaN:
        none reported)."""
        return {o.name: _best(trial, o)[0] for o in self.objectives}

    def violation(self, trial) -> float:
        """The trial's total relative constraint violation (0: feasible)."""
        values, signs = self.objective_values(trial), self._signs()
        return sum(
            max(0.0, signs[name] * (values[name] - bound)) / (abs(bound) or 1.0)
            for name, bound in (self.constraints or {}).items()
        )

    def pareto_front(self, include_infeasible: bool = False) -> list:
        """The completed trials no other dominates, in start order.

        Only feasible trials compete (an empty list when none is feasible),
        unless `include_infeasible`, which ignores the constraints.
        """
        trials = self._candidates()
        if self.constraints and not include_infeasible:
            trials = [trial for trial in trials if self.violation(trial) == 0]
        front = pareto.pareto_front(self._points(trials)) if trials else []
        return [trials[index] for index in front]

    def hypervolume(self, reference: dict[str, float] | None = None) -> float:
        """The volume the feasible front dominates, up to the reference point.

        `reference` (`{objective name: value}`) replaces the constructor's
        `reference_point`; trials not better than it in every objective add 0.
        """
        reference = _bounds(reference, self.objectives, "reference", True)
        reference = reference or self.reference_point
        if reference is None:
            raise ValueError(
                f"{_NAME}.hypervolume got no reference point; expected one value "
                "per objective, worse than any trial that should count. Pass "
                "reference_point={...} to the constructor or hypervolume(reference="
                f"{{...}}), over {list(self._signs())}."
            )
        corner = self._points([reference], named=True)[0]
        front = self._points(self.pareto_front()).reshape(-1, len(reference))
        return pareto.hypervolume(front, corner)

    def get_best_trials(self, num_trials: int = 1) -> list:
        """The Pareto ranking (see the class), then the other trials."""
        ranked = self._ranking()
        ids = {trial.trial_id for trial in ranked}
        rest = [t for t in self.trials.values() if t.trial_id not in ids]
        rest.sort(key=lambda trial: trial.status != TrialStatus.COMPLETED)
        return (ranked + rest)[:num_trials]

    # --- GeneticOracle's hooks ----------------------------------------------------

    def score_trial(self, trial) -> None:
        """Scores a completed trial: the first objective (NaN if any is NaN).

        A trial that did not report every objective scores NaN, with a message
        naming the missing ones: keras-tuner then ends it INVALID (FAILED once
        no retry is left) and the search goes on.
        """
        missing = [o.name for o in self.objectives if not trial.metrics.exists(o.name)]
        if missing:
            trial.message = (
                f"Trial {trial.trial_id} completed without reporting the "
                f"objectives {missing}; it reported {sorted(trial.metrics.metrics)}. "
                "Expected every objective among the metrics each trial returns. "
                f"Make run_trial / HyperModel.fit return {missing}, or pass "
                "objectives= the reported metrics."
            )
            warnings.warn(trial.message, stacklevel=2)
            trial.score, trial.best_step = math.nan, None
            return
        values = list(self.objective_values(trial).values())
        trial.score = math.nan if any(map(math.isnan, values)) else values[0]
        trial.best_step = _best(trial, self.objectives[0])[1]

    def _population(self) -> list:
        return self._ranking()[: self.config.population_size]

    def _select_parents(self, scheme: str, ranked: list) -> list[str]:
        # `ranked` is the population, best first: a position is a crowded rank.
        positions = [(trial_id, -index) for index, (trial_id, _) in enumerate(ranked)]
        size = self.config.tournament_size
        return operators.tournament(positions, 2, self._rng, size=size)

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["pareto"] = self._settings()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        saved = state["pareto"]
        requested = self._settings()
        changed = [
            f"{key}={requested[key]!r} (saved {saved[key]!r})"
            for key in ("objectives", "constraints")
            if requested[key] != saved[key]
        ]
        if changed:
            warnings.warn(
                f"{_NAME} is resuming a search saved with other "
                f"settings: {', '.join(changed)}. The saved settings are used, so "
                "the search continues as it started. To change them, start a new "
                "project (another project_name, or overwrite=True).",
                stacklevel=2,
            )
        self._objectives = [keras_tuner.Objective(*o) for o in saved["objectives"]]
        self.objective = self._objectives[0]
        self.constraints = saved["constraints"]
        self.reference_point = self.reference_point or saved["reference_point"]

    # --- helpers ----------------------------------------------------------------

    def _signs(self) -> dict[str, float]:
        """+1 for a "min" objective, -1 for a "max" one: minimizing internally."""
        return {o.name: 1.0 if o.direction == "min" else -1.0 for o in self.objectives}

    def _settings(self) -> dict[str, Any]:
        return {
            "objectives": [[o.name, o.direction] for o in self.objectives],
            "constraints": self.constraints,
            "reference_point": self.reference_point,
        }

    def _candidates(self) -> list:
        """Completed trials with finite values for every objective, in start order."""
        start = {trial_id: index for index, trial_id in enumerate(self.start_order)}
        trials = [
            trial
            for trial in self.trials.values()
            if trial.status == TrialStatus.COMPLETED
            and all(math.isfinite(v) for v in self.objective_values(trial).values())
        ]
        trials.sort(key=lambda t: (start.get(t.trial_id, len(start)), t.trial_id))
        return trials

    def _ranking(self) -> list:
        trials = self._candidates()
        if not trials:
            return []
        violations = [self.violation(t) for t in trials] if self.constraints else None
        order = pareto.pareto_ranking(self._points(trials), violations)
        return [trials[index] for index in order]

    def _points(self, trials: list, named: bool = False) -> np.ndarray:
        """Objective values to minimize, one row per trial (or `{name: value}`)."""
        rows = [row if named else self.objective_values(row) for row in trials]
        signs = self._signs()
        return np.array([[signs[n] * row[n] for n in signs] for row in rows])


def _objectives(objectives) -> list[keras_tuner.Objective]:
    objectives = getattr(objectives, "objectives", objectives)  # MultiObjective
    if not isinstance(objectives, list | tuple) or len(objectives) < 2:
        raise ValueError(
            f"{_NAME} got objectives={_shown(objectives)}; expected a list of "
            f"2 or more objectives, e.g. {_EXAMPLE}. For one objective use "
            "GeneticOracle(objective=...)."
        )
    parsed = []
    for given in objectives:
        objective = given
        if isinstance(given, str):
            objective = keras_tuner.Objective(given, infer_metric_direction(given))
        if not isinstance(objective, keras_tuner.Objective) or (
            objective.direction not in ("min", "max")
        ):
            name = getattr(objective, "name", given)
            raise ValueError(
                f"{_NAME} got the objective {given!s}, whose "
                "direction is not 'min' or 'max' (keras-tuner infers it only for "
                "known metrics such as 'val_accuracy' or 'val_loss'). Expected a "
                f"keras_tuner.Objective. Pass keras_tuner.Objective({name!r}, "
                "'min') or 'max'."
            )
        parsed.append(objective)
    names = [objective.name for objective in parsed]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(
            f"{_NAME} got the objectives {names}, naming {duplicates} "
            "more than once; expected distinct metric names. Keep one objective "
            "per metric."
        )
    return parsed


def _bounds(bounds, objectives, argument: str, complete=False) -> dict | None:
    """`{objective name: finite float}` (every objective if `complete`), or None."""
    if bounds is None:
        return None
    names = [objective.name for objective in objectives]
    if not isinstance(bounds, dict):
        raise ValueError(
            f"{_NAME} got {argument}={bounds!r}; expected a dict "
            f"{{objective name: number}} over {names}. Pass e.g. "
            f"{argument}={{{names[-1]!r}: 2.5}}."
        )
    checked = {}
    for name, value in bounds.items():
        if name not in names:
            raise ValueError(
                f"{_NAME} got {argument} on {name!r}, which is not an "
                f"objective; expected one of {names}."
                f"{did_you_mean(name, names)} Fix the name, or add the metric to "
                "objectives=."
            )
        finite = not isinstance(value, bool) and isinstance(value, numbers.Real)
        if not finite or not math.isfinite(value):
            raise ValueError(
                f"{_NAME} got {argument}[{name!r}]={value!r}; expected a "
                f"finite number. Pass e.g. {argument}={{{name!r}: 2.5}}."
            )
        checked[name] = float(value)
    missing = [name for name in names if name not in checked]
    if complete and missing:
        raise ValueError(
            f"{_NAME} got {argument}={bounds!r}, missing the objectives {missing}; "
            "expected a value for every objective. Add them, each worse than any "
            "trial that should count."
        )
    return checked


def _shown(objectives) -> str:
    """Objectives as text (`keras_tuner.Objective` has no useful repr)."""
    if isinstance(objectives, list | tuple):
        return f"[{', '.join(map(str, objectives))}]"
    return str(objectives)


def _best(trial, objective) -> tuple[float, int | None]:
    """The trial's best value of `objective` in its direction, and its step."""
    if not trial.metrics.exists(objective.name):
        return math.nan, None
    history = [
        (obs.mean(), obs.step)
        for obs in trial.metrics.get_history(objective.name)
        if not math.isnan(obs.mean())
    ]
    if not history:
        return math.nan, None
    pick = max if objective.direction == "max" else min
    return pick(history, key=lambda pair: pair[0])


class ParetoSearch(GeneticSearch):
    """`GeneticSearch` with a `ParetoGeneticOracle`: several objectives.

    ```python
    tuner = ParetoSearch(
        hypermodel,  # its fit reports latency_ms, e.g. GAAFHyperModel(latency=...)
        objectives=[kt.Objective("val_accuracy", "max"),
                    kt.Objective("latency_ms", "min")],
        max_trials=60, seed=0, constraints={"latency_ms": 2.5},
    )
    tuner.search(x, y, validation_data=(xv, yv))
    tuner.oracle.pareto_front()
    ```

    # Arguments
        objectives, constraints, reference_point: see `ParetoGeneticOracle`.
        *args, **kwargs: as for `GeneticSearch` (not `objective`).
    """

    def __init__(
        self,
        hypermodel=None,
        objectives=None,
        max_trials: int | None = 50,
        *,
        constraints: dict[str, float] | None = None,
        reference_point: dict[str, float] | None = None,
        **kwargs,
    ):
        if "objective" in kwargs:
            raise ValueError(
                f"ParetoSearch got objective={kwargs['objective']!s}; expected "
                f"objectives= (2 or more), e.g. {_EXAMPLE}. Rename the argument."
            )
        self._pareto = {"constraints": constraints, "reference_point": reference_point}
        super().__init__(hypermodel, objectives, max_trials, **kwargs)

    def _make_oracle(self, *, objective, **arguments) -> ParetoGeneticOracle:
        return ParetoGeneticOracle(objective, **self._pareto, **arguments)
