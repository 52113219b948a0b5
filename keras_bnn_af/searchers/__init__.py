"""Search algorithms for binary networks, as keras-tuner oracles and tuners.

- `GeneticOracle` / `GeneticSearch`: GAAF-style steady-state genetic search over
  any keras-tuner space (elitism, tournament or roulette selection, single-point
  or uniform crossover, 1-3 gene mutation), seeded and resumable.
- `operators`: the seeded, pure GA operators they use, on value dicts.
- `GAAFHyperModel`: GAAF's genome space; `TreeOracle` / `TreeSearch` /
  `TreeHyperModel`: PANGAEA-style AF-tree evolution (`af_tree`).
- `run_search` / `SearchConfig`: the `keras-bnn-af search` job (resumable).

```python
from keras_bnn_af.searchers import GeneticSearch

tuner = GeneticSearch(build_model, objective="val_accuracy", max_trials=60,
                      population_size=12, seed=0)
```
"""

from keras_bnn_af.searchers import af_tree, operators
from keras_bnn_af.searchers.af_search import (
    GAAFHyperModel,
    StopBelow,
    TreeHyperModel,
    TreeOracle,
    TreeSearch,
)
from keras_bnn_af.searchers.genetic import GeneticOracle, GeneticSearch
from keras_bnn_af.searchers.job import SearchConfig, run_search

__all__ = [
    "GAAFHyperModel",
    "GeneticOracle",
    "GeneticSearch",
    "SearchConfig",
    "StopBelow",
    "TreeHyperModel",
    "TreeOracle",
    "TreeSearch",
    "af_tree",
    "operators",
    "run_search",
]
