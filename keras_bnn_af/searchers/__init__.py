"""Search algorithms for binary networks, as keras-tuner oracles and tuners.

- `GeneticOracle` / `GeneticSearch`: GAAF-style steady-state genetic search over
  any keras-tuner space (elitism, tournament or roulette selection, single-point
  or uniform crossover, gene mutation), seeded and resumable; its settings are
  one `GeneticConfig`, with population and mutation adapted to the space and
  budget by default.
- `operators`: the seeded, pure GA operators they use, on value dicts.
- `GAAFHyperModel`: GAAF's genome space; `TreeOracle` / `TreeSearch` /
  `TreeHyperModel`: PANGAEA-style AF-tree evolution (`af_tree`).
- `ParetoGeneticOracle` / `ParetoSearch`: the same search over several
  objectives (accuracy and latency), NSGA-II ranking with constraints and
  hypervolume (`pareto`).
- `TrialLatency` (`latency_objective`): a trial's `latency_ms`, predicted by a
  `keras_bnn_af.latency.LatencyModel` profile or measured on the host.
- `liveness`: a SIGKILLed distributed worker's trial ends after
  `worker_timeout` without a heartbeat, instead of stalling the chief.
- `ArchHyperModel`: binary architectures (depth, widths, kernels, binarizer
  per block, pooling) as a keras-tuner space (`arch_search`).
- `run_search` / `SearchConfig`: the `keras-bnn-af search` job (resumable;
  accuracy against latency: `hardware_aware`).

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
    "ArchHyperModel": ("keras_bnn_af.searchers.arch_search", "ArchHyperModel"),
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
    "ParetoSearch": ("keras_bnn_af.searchers.pareto_oracle", "ParetoSearch"),
    "TrialLatency": ("keras_bnn_af.searchers.latency_objective", "TrialLatency"),
    "SearchConfig": (_JOB, "SearchConfig"),
    "run_search": (_JOB, "run_search"),
}
_SUBMODULES = (
    "af_search",
    "af_tree",
    "arch_search",
    "genetic",
    "genetic_config",
    "hardware_aware",
    "job",
    "job_results",
    "latency_objective",
    "liveness",
    "operators",
    "pareto",
    "pareto_oracle",
    "values",
)

__all__ = [
    "ArchHyperModel",
    "GAAFHyperModel",
    "GeneticConfig",
    "GeneticOracle",
    "GeneticSearch",
    "ParetoGeneticOracle",
    "ParetoSearch",
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
