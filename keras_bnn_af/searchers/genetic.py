r"""Steady-state genetic search over any keras-tuner space.

```python
import keras_tuner as kt
from keras_bnn_af.searchers import GeneticSearch

tuner = GeneticSearch(
    build_model,                       # or a kt.HyperModel
    objective=kt.Objective("val_accuracy", "max"),
    max_trials=60,
    seed=0,                            # population and mutation: adaptive
    directory="runs",
    project_name="gaaf",
)
tuner.search(x, y, validation_data=(x_val, y_val), epochs=5)
```

The oracle, `GeneticOracle`, works on the genome `{name: value}` of a
`keras_tuner.HyperParameters` space (`Choice`, `Int`, `Float`, `Boolean`, `Fixed`,
conditional scopes) and uses the operators of `keras_bnn_af.searchers.operators`.
Its settings are one `GeneticConfig` (`keras_bnn_af.searchers.genetic_config`),
given whole (`config=`) or field by field as keywords.
"""

from __future__ import annotations

import copy
import math
import random
import time
import warnings
from collections.abc import Callable
from typing import Any

import keras_tuner
from keras_tuner.engine.trial import TrialStatus

from keras_bnn_af._errors import did_you_mean
from keras_bnn_af.searchers import liveness, operators
from keras_bnn_af.searchers.genetic_config import (
    CROSSOVER_TYPES,
    SELECTION_POLICIES,
    GeneticConfig,
)
from keras_bnn_af.searchers.project_files import AtomicOracleFiles, AtomicTunerFiles

__all__ = [
    "CROSSOVER_TYPES",
    "GeneticConfig",
    "GeneticOracle",
    "GeneticSearch",
    "SELECTION_POLICIES",
]

#: `candidate_filter(values)` returns None to keep a genome, or why it is skipped.
CandidateFilter = Callable[[dict[str, Any]], str | None]
# Proposals tried before a child (or a random genome) counts as impossible.
MAX_ATTEMPTS = 100


class GeneticOracle(liveness.LivenessOracle, AtomicOracleFiles, keras_tuner.Oracle):
    r"""Steady-state genetic algorithm (GAAF-style) as a keras-tuner oracle.

    A trial's fitness is its score, negated for a `"min"` objective, so that
    higher is always better:

    \\[
    f(t) = \begin{cases} s(t) & \text{direction} = \text{max} \\\
        -s(t) & \text{direction} = \text{min} \end{cases}
    \\]

    The search runs in two phases.

    1. **Initial population.** The first `population_size` trials are distinct
       random genomes.
    2. **Children.** Every further trial is one child: two parents are selected
       from the population (tournament and roulette may draw one individual
       twice), crossed over with probability `crossover_rate` (otherwise the
       child starts as a copy of the first parent) and between
       `mutation_genes[0]` and `mutation_genes[1]` of its genes are mutated.

    The population is the `population_size` fittest COMPLETED trials (ties: the
    earlier trial), recomputed from the trials whenever it is needed. That is
    steady-state replacement of the worst: a child joins the population when it
    beats the worst member, which then leaves it. Failed, invalid, running and
    non-finite-score trials are never parents, and the population does not
    depend on the order in which parallel trials complete.

    No genome is proposed twice: a proposal equal to a tried or running genome
    (keras-tuner's `_tried_so_far` hashes) is redrawn, and so is a proposal the
    `candidate_filter` rejects (it is recorded in `skipped`, costs no trial
    and is never proposed again). A crossover or mutation that finds no valid
    result (`operators.OperatorError`) leaves the genome as it was: a copy of
    the first parent, or a duplicate that is redrawn. After `MAX_ATTEMPTS` proposals
    the oracle falls back to a random genome, and stops (`"STOPPED"`) when none
    is new either: the space is (practically) exhausted.

    With parallel workers, a trial requested while fewer than two trials have
    completed and all initial genomes are running gets `"IDLE"` (retry later);
    when nothing is running the oracle proposes another random genome instead,
    as keras-tuner's single-process loop would otherwise spin forever.

    All randomness comes from one `random.Random(seed)`, saved with the settings
    and counters in `get_state`, so a reloaded search continues exactly as an
    uninterrupted one.

    The oracle's state (`oracle.json`) and each `trial.json` are written
    atomically (a temporary sibling renamed onto the file; keras-tuner writes
    them in place), so a process killed while saving leaves the previous
    version and the project reloads. `reload` also survives a `trial.json` left
    half-written by an older version (see there).

    # Arguments
        objective: as for `keras_tuner.Oracle`: a metric name, a
            `keras_tuner.Objective` or a list of them.
        max_trials: the number of trials to run at most, or None for no limit.
        config: a `GeneticConfig`; None for the defaults (adaptive population
            and mutation).
        seed: the random seed (any int, including 0). None draws one.
        hyperparameters: the search space, as a `keras_tuner.HyperParameters`.
            Required unless a `HyperModel` declares the space before the first
            trial (as `GeneticSearch` does when given a hypermodel).
        allow_new_entries: as for `keras_tuner.Oracle`.
        tune_new_entries: as for `keras_tuner.Oracle`.
        max_retries_per_trial: as for `keras_tuner.Oracle`.
        max_consecutive_failed_trials: as for `keras_tuner.Oracle`.
        candidate_filter: `values -> None` (run the genome) or a reason to skip
            it untrained, e.g. `GAAFHyperModel.candidate_problem`.
        **settings: `worker_timeout`, `heartbeat_interval` (a dead distributed
            worker's trial ends: `liveness.LivenessOracle`), then fields of
            `GeneticConfig` (`population_size`, `selection`, `crossover`,
            `crossover_rate`, `mutation_genes`, `tournament_size`), replacing
            those of `config`.

    # Raises
        ValueError: for a bad setting (see `GeneticConfig`), an unknown keyword,
            or a `population_size` above `max_trials`; later, on the first
            trial, for an empty search space, and when a completed trial did not
            report the objective.

    # References
        - [GAAF: Searching Activation Functions for Binary Neural Networks
            through Genetic Algorithm](https://arxiv.org/abs/2206.03291)
    """

    def __init__(
        self,
        objective=None,
        max_trials: int | None = 50,
        *,
        config: GeneticConfig | None = None,
        seed: int | None = None,
        hyperparameters: keras_tuner.HyperParameters | None = None,
        allow_new_entries: bool = True,
        tune_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        candidate_filter: CandidateFilter | None = None,
        **settings,
    ):
        alive = liveness.pop_liveness_settings(settings)
        _check_keywords(settings, "GeneticOracle")
        requested = GeneticConfig.with_settings(config, settings)
        requested.check_budget(max_trials)
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            **alive,
        )
        if seed is not None:  # the base class turns seed=0 into a random seed
            self.seed = self._seed_state = seed
        self._config = requested
        self.candidate_filter = candidate_filter
        self._rng = random.Random(self.seed)
        # trial_id -> {"origin": "random"} or {"origin": "child", "parents": [...],
        # "selection": ..., "crossover": ... or None}
        self._lineage: dict[str, dict[str, Any]] = {}
        self._children = 0
        # [generation, scheme]: the scheme drawn for that generation.
        self._generation_selection: list = [None, None]
        self._skipped: list[dict[str, Any]] = []
        self._skipped_hashes: set[str] = set()

    @property
    def config(self) -> GeneticConfig:
        """The settings; adaptive fields are filled in on the first trial."""
        return self._config

    # --- the search ------------------------------------------------------------

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """Proposes the genome of a new trial: random, a child, IDLE or STOPPED.

        Runs inside the synchronized `create_trial`, so it never waits.

        # Arguments
            trial_id: the ID of the trial being created.

        # Returns
            `{"status": "RUNNING", "values": {...}}` with plain Python values,
            `{"status": "IDLE", "values": None}` while every initial genome is
            running and fewer than two have completed, or
            `{"status": "STOPPED", "values": None}` when no new genome is found.

        # Raises
            ValueError: when the search space is empty.
        """
        self._check_space_not_empty()
        self._settle_config()
        population = self._population()
        if self._needs_random_genome(population):
            return self._start(trial_id, self._random_genome(), {"origin": "random"})
        if len(population) < 2:
            return {"status": TrialStatus.IDLE, "values": None}
        values, lineage = self._child(population)
        if values is None:
            return self._start(trial_id, self._random_genome(), {"origin": "random"})
        return self._start(trial_id, values, lineage)

    @keras_tuner.synchronized
    def end_trial(self, trial) -> None:
        """Records a finished trial (see `keras_tuner.Oracle.end_trial`) and saves.

        keras-tuner 1.4.8 saves the oracle before it removes the trial from the
        ongoing ones, so a project reloaded from that file would run the last
        trial again as a retry; saving once more afterwards prevents it.
        """
        super().end_trial(trial)
        self.save()

    def score_trial(self, trial) -> None:
        """Scores a completed trial, checking that it reported the objective.

        # Raises
            ValueError: when the trial's metrics lack the objective.
        """
        if not trial.metrics.exists(self.objective.name):
            reported = sorted(trial.metrics.metrics)
            raise ValueError(
                f"Trial {trial.trial_id} completed without reporting the objective "
                f"{self.objective.name!r}; it reported the metrics {reported}. "
                "Expected the objective among the metrics each trial returns. Pass "
                "objective= one of the reported metrics (e.g. "
                'keras_tuner.Objective("val_accuracy", "max")), or make run_trial '
                f"/ HyperModel.fit return {self.objective.name!r}."
            )
        super().score_trial(trial)

    @property
    def population(self) -> list[str]:
        """The trial IDs of the current population, fittest first."""
        return [trial.trial_id for trial in self._population()]

    @property
    def lineage(self) -> dict[str, dict[str, Any]]:
        """How each trial was proposed: `{"origin": "random"}` or a child record.

        A child record is `{"origin": "child", "parents": [id, id], "selection":
        scheme, "crossover": type or None}` (None: the child was a copy of the
        first parent before mutation).
        """
        return copy.deepcopy(self._lineage)

    @property
    def skipped(self) -> list[dict[str, Any]]:
        """Genomes the `candidate_filter` rejected: `{"values", "reason"}` each."""
        return copy.deepcopy(self._skipped)

    # --- state ------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["genetic"] = {
            "config": self._config.to_json(),
            "rng_state": _rng_state_to_json(self._rng.getstate()),
            "children": self._children,
            "generation_selection": list(self._generation_selection),
            "lineage": copy.deepcopy(self._lineage),
            "skipped": copy.deepcopy(self._skipped),
        }
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        genetic = state["genetic"]
        saved = GeneticConfig.from_json(genetic["config"])
        self._warn_on_config_change(saved)
        self._config = saved
        self._rng.setstate(_rng_state_from_json(genetic["rng_state"]))
        self._children = genetic["children"]
        self._generation_selection = list(genetic["generation_selection"])
        self._lineage = copy.deepcopy(genetic["lineage"])
        self._skipped = copy.deepcopy(genetic.get("skipped", []))
        self._skipped_hashes = {
            self._compute_values_hash(entry["values"]) for entry in self._skipped
        }

    def _forget_trial_state(self, state: dict, trial_id: str) -> None:
        record = state["genetic"]["lineage"].pop(trial_id, None)
        if record and record["origin"] == "child":
            state["genetic"]["children"] -= 1

    # --- helpers ----------------------------------------------------------------

    def _settle_config(self) -> None:
        """Fills in the adaptive settings from the space and the budget, once."""
        if self._config.adaptive_fields:
            sizes = operators.gene_sizes(self.hyperparameters)
            self._config = self._config.resolve(sizes, self.max_trials)

    def _needs_random_genome(self, population: list) -> bool:
        if len(population) < 2 and not self.ongoing_trials:
            return True  # nothing to breed from and nothing to wait for
        started_random = sum(
            1 for record in self._lineage.values() if record["origin"] == "random"
        )
        size = self._config.population_size
        return len(population) < size and started_random < size

    def _start(self, trial_id: str, values, lineage) -> dict[str, Any]:
        if values is None:
            return {"status": TrialStatus.STOPPED, "values": None}
        self._lineage[trial_id] = lineage
        return {"status": TrialStatus.RUNNING, "values": values}

    def _random_genome(self) -> dict[str, Any] | None:
        for _ in range(MAX_ATTEMPTS):
            values = self._random_values()
            if self._acceptable(values):
                return values
        return None

    def _random_values(self) -> dict[str, Any]:
        """A random genome (subclasses may override)."""
        return operators.random_values(self.hyperparameters, self._rng)

    def _acceptable(self, values: dict[str, Any]) -> bool:
        """New, and not rejected by the candidate filter (which is then recorded)."""
        if self._duplicate(values):
            return False
        key = self._compute_values_hash(values)
        if key in self._skipped_hashes:
            return False
        reason = self.candidate_filter(values) if self.candidate_filter else None
        if reason is None:
            return True
        self._skipped.append({"values": dict(values), "reason": reason})
        self._skipped_hashes.add(key)
        return False

    def _child(self, population: list):
        config = self._config
        scheme = self._selection_for_next_child()
        ranked = [(trial.trial_id, self._fitness(trial)) for trial in population]
        order = list(dict.fromkeys(hp.name for hp in self.hyperparameters.space))
        for _ in range(MAX_ATTEMPTS):
            first, second = self._select_parents(scheme, ranked)
            crossed = self._rng.random() < config.crossover_rate
            values = self.trials[first].hyperparameters.values
            if crossed:
                other = self.trials[second].hyperparameters.values
                values = _or_unchanged(self._crossover_values, values, other, order)
            values = _or_unchanged(self._mutate_values, values)
            if self._acceptable(values):
                self._children += 1
                return values, {
                    "origin": "child",
                    "parents": [first, second],
                    "selection": scheme,
                    "crossover": config.crossover if crossed else None,
                }
        return None, None

    def _crossover_values(self, a: dict, b: dict, order: list[str]) -> dict:
        """One child of genomes `a` and `b` (subclasses may override; raise
        `operators.OperatorError` when there is none)."""
        return operators.CROSSOVERS[self._config.crossover](a, b, order, self._rng)

    def _mutate_values(self, values: dict) -> dict:
        """`values` with `mutation_genes` genes changed (subclasses may override;
        raise `operators.OperatorError` when there is no valid mutation)."""
        return operators.mutate(
            values, self.hyperparameters, self._rng, self._config.mutation_genes
        )

    def _selection_for_next_child(self) -> str:
        config = self._config
        if config.selection != "per_generation":
            return config.selection
        generation = self._children // config.population_size
        if self._generation_selection[0] != generation:
            schemes = sorted(operators.SELECTIONS)
            self._generation_selection = [generation, self._rng.choice(schemes)]
        return self._generation_selection[1]

    def _select_parents(self, scheme: str, ranked: list) -> list[str]:
        if scheme == "tournament":
            size = self._config.tournament_size
            return operators.tournament(ranked, 2, self._rng, size=size)
        return operators.SELECTIONS[scheme](ranked, 2, self._rng)

    def _population(self) -> list:
        start = {trial_id: index for index, trial_id in enumerate(self.start_order)}
        completed = [
            trial
            for trial in self.trials.values()
            if trial.status == TrialStatus.COMPLETED
            and trial.score is not None
            and math.isfinite(trial.score)
        ]
        completed.sort(
            key=lambda trial: (
                -self._fitness(trial),
                start.get(trial.trial_id, len(start)),
                trial.trial_id,
            )
        )
        return completed[: self._config.population_size]

    def _fitness(self, trial) -> float:
        score = float(trial.score)
        return score if self.objective.direction == "max" else -score

    def _check_space_not_empty(self) -> None:
        if not self.hyperparameters.space:
            raise ValueError(
                "GeneticOracle got an empty search space: no hyperparameters were "
                "declared before the first trial. Expected at least one "
                "hyperparameter to evolve. Pass hyperparameters= (a "
                "keras_tuner.HyperParameters with the space), or give the tuner a "
                "HyperModel (or build function): keras-tuner only learns a space "
                "from a hypermodel, not from hyperparameters created inside "
                "run_trial."
            )

    def _warn_on_config_change(self, saved: GeneticConfig) -> None:
        requested = self._config.to_json()
        changed = {
            key: (value, saved.to_json()[key])
            for key, value in requested.items()
            if value is not None and saved.to_json()[key] != value
        }
        if changed:
            details = ", ".join(
                f"{key}={new!r} (saved {old!r})" for key, (new, old) in changed.items()
            )
            warnings.warn(
                f"GeneticOracle is resuming a search saved with other settings: "
                f"{details}. The saved settings are used, so the search continues "
                "as it started. To change them, start a new project (another "
                "project_name, or overwrite=True).",
                stacklevel=2,
            )


class GeneticSearch(liveness.LivenessTuner, AtomicTunerFiles, keras_tuner.Tuner):
    """Genetic search tuner: a `keras_tuner.Tuner` driven by a `GeneticOracle`.

    The counterpart of `keras_tuner.RandomSearch`: it builds the oracle from the
    search arguments below and passes everything else to `keras_tuner.Tuner`.
    A hypermodel with a `candidate_problem(values)` method (as
    `GAAFHyperModel` and `TreeHyperModel` have) becomes the oracle's
    `candidate_filter`, so candidates it rejects are skipped untrained.

    A distributed worker whose request got `"IDLE"` (see `GeneticOracle`) waits
    `idle_wait_seconds` (a class attribute, 0.5 s) before asking again:
    keras-tuner's search loop retries at once, about 600 requests a second to the
    chief on loopback.

    # Arguments
        hypermodel: a `keras_tuner.HyperModel` or a build function `hp -> model`.
            Optional when `run_trial` is overridden.
        objective: as for `keras_tuner.Tuner`.
        max_trials: the number of trials to run at most.
        config: see `GeneticOracle`.
        seed: see `GeneticOracle`.
        hyperparameters: see `GeneticOracle`.
        tune_new_entries: as for `keras_tuner.Tuner`.
        allow_new_entries: as for `keras_tuner.Tuner`.
        max_retries_per_trial: as for `keras_tuner.Tuner`.
        max_consecutive_failed_trials: as for `keras_tuner.Tuner`.
        **kwargs: `worker_timeout`, `heartbeat_interval` (see `GeneticOracle`;
            workers send heartbeats), `GeneticConfig` fields, then the
            other arguments of `keras_tuner.Tuner` (`directory`, `project_name`,
            `overwrite`, `executions_per_trial`, ...).

    # Raises
        ValueError: as for `GeneticOracle` and `keras_tuner.Tuner`.
    """

    idle_wait_seconds = 0.5

    def __init__(
        self,
        hypermodel=None,
        objective=None,
        max_trials: int | None = 50,
        *,
        config: GeneticConfig | None = None,
        seed: int | None = None,
        hyperparameters: keras_tuner.HyperParameters | None = None,
        tune_new_entries: bool = True,
        allow_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        **kwargs,
    ):
        self.seed = seed
        oracle = self._make_oracle(
            objective=objective,
            max_trials=max_trials,
            config=config,
            seed=seed,
            hyperparameters=hyperparameters,
            tune_new_entries=tune_new_entries,
            allow_new_entries=allow_new_entries,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            candidate_filter=getattr(hypermodel, "candidate_problem", None),
            **GeneticConfig.pop_settings(kwargs),
            **liveness.pop_liveness_settings(kwargs),
        )
        super().__init__(oracle, hypermodel, **kwargs)
        self._waiting_for_trial = False

    def on_search_begin(self):
        super().on_search_begin()
        self._waiting_for_trial = False

    def pre_create_trial(self):
        """Waits `idle_wait_seconds` if the previous request got `"IDLE"`.

        keras-tuner's loop is `pre_create_trial`, `create_trial`, then `"STOPPED"`
        ends it, `"IDLE"` loops again and any other status calls `on_trial_begin`;
        so a request not followed by `on_trial_begin` got `"IDLE"`.
        """
        super().pre_create_trial()
        if self._waiting_for_trial:
            time.sleep(self.idle_wait_seconds)
        self._waiting_for_trial = True

    def on_trial_begin(self, trial):
        self._waiting_for_trial = False
        super().on_trial_begin(trial)

    def _make_oracle(self, **arguments) -> GeneticOracle:
        return GeneticOracle(**arguments)


def _or_unchanged(operator, values: dict, *arguments) -> dict:
    """`operator(values, *arguments)`, or `values` if it finds no valid result.

    Crossover and mutation fail the same way (`operators.OperatorError`): the
    genome goes on unchanged, so a failed crossover leaves a copy of the first
    parent to mutate, and a failed mutation leaves a duplicate, which the
    oracle rejects and draws again.
    """
    try:
        return operator(values, *arguments)
    except operators.OperatorError:
        return values


def _check_keywords(settings: dict[str, Any], caller: str) -> None:
    unknown = [name for name in settings if name not in GeneticConfig.field_names()]
    if unknown:
        known = GeneticConfig.field_names()
        hint = did_you_mean(unknown[0], known)
        raise ValueError(
            f"{caller} got unknown keyword argument(s) {unknown}; expected the "
            f"oracle's own arguments or GeneticConfig fields {list(known)}.{hint} "
            "Fix the name."
        )


def _rng_state_to_json(state: tuple) -> list:
    """`random.Random.getstate()` as JSON-ready lists."""
    version, internal, gauss_next = state
    return [version, list(internal), gauss_next]


def _rng_state_from_json(state: list) -> tuple:
    version, internal, gauss_next = state
    return (version, tuple(internal), gauss_next)
