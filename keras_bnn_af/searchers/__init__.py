"""Search algorithms for binary networks, as keras-tuner oracles and tuners.

- `GeneticOracle` / `GeneticSearch`: GAAF-style steady-state genetic search over
  any keras-tuner space (elitism, tournament or roulette selection, single-point
  or uniform crossover, gene mutation), seeded and resumable; its settings are
  one `GeneticConfig`, with population and mutation adapted to the space and
  budget by default.
- `operators`: the seeded, pure GA operators they use, on value dicts.
- `GAAFHyperModel`: GAAF's genome space; `TreeOracle` / `TreeSearch` /
  `TreeHyperModel`: PANGAEA-style AF-tree evolution (`af_tree`).
- `ParetoGeneticOracle`: the same search over several objectives (accuracy and
  latency), NSGA-II ranking with constraints and hypervolume (`pareto`).
- `TrialLatency` (`latency_objective`): a trial's `latency_ms`, predicted by a
  `keras_bnn_af.latency.LatencyModel` profile or measured on the host.
- `liveness`: a SIGKILLed distributed worker's trial ends after
  `worker_timeout` without a heartbeat, instead of stalling the chief.
- `run_search` / `SearchConfig`: the `keras-bnn-af search` job (resumable).

```python
from keras_bnn_af.searchers import GeneticSearch

tuner = GeneticSearch(build_model, objective="val_accuracy", max_trials=60, seed=0)
```

`operators` and `af_tree` are pure Python (no TensorFlow); the oracles, tuners
and hypermodels load keras-tuner (and with it TensorFlow) on first use.
"""

from keras_bnn_af._lazy import lazy_attributes

_AF_SEARCH = "keras_bnn_af.searchers.af_search"
_GENETIC = "keras_bnn_af.searchers.genetic"
_JOB = "keras_bnn_af.searchers.job"
#: Public name -> (module, attribute), imported on first access.
_LAZY = {
    "GAAFHyperModel": (_AF_SEARCH, "GAAFHyperModel"),
    "StopBelow": (_AF_SEARCH, "StopBelow"),
    "TreeHyperModel": (_AF_SEARCH, "TreeHyperModel"),
    "TreeOracle": (_AF_SEARCH, "TreeOracle"),
    "TreeSearch": (_AF_SEARCH, "TreeSearch"),
    "GeneticConfig": ("keras_bnn_af.searchers.genetic_config", "GeneticConfig"),
    "GeneticOracle": (_GENETIC, "GeneticOracle"),
    "GeneticSearch": (_GENETIC, "GeneticSearch"),
    "ParetoGeneticOracle": (
        "keras_bnn_af.searchers.pareto_oracle",
        "ParetoGeneticOracle",
    ),
    "TrialLatency": ("keras_bnn_af.searchers.latency_objective", "TrialLatency"),
    "SearchConfig": (_JOB, "SearchConfig"),
    "run_search": (_JOB, "run_search"),
}
_SUBMODULES = (
    "af_search",
    "af_tree",
    "genetic",
    "genetic_config",
    "job",
    "latency_objective",
    "liveness",
    "operators",
    "pareto",
    "pareto_oracle",
    "values",
)

__all__ = [
    "GAAFHyperModel",
    "GeneticConfig",
    "GeneticOracle",
    "GeneticSearch",
    "ParetoGeneticOracle",
    "SearchConfig",
    "StopBelow",
    "TreeHyperModel",
    "TreeOracle",
    "TreeSearch",
    "TrialLatency",
    "af_tree",
    "operators",
    "run_search",
]


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY, _SUBMODULES)
