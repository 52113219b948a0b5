r"""The settings of the genetic search, validated once, with adaptive defaults.

```python
from keras_bnn_af.searchers import GeneticConfig, GeneticSearch

config = GeneticConfig(selection="per_generation", mutation_genes=(1, 3))  # GAAF's
GeneticSearch(build_model, objective="val_accuracy", max_trials=60, config=config)
GeneticSearch(build_model, objective="val_accuracy", max_trials=60,
              population_size=8)                  # the same fields as keywords
```

`GeneticConfig` is what the oracle, the tuner, the `keras-bnn-af search` job
and its command line share, and what the oracle saves in its state.

**Adaptive defaults.** `population_size=None` and `mutation_genes=None` are
filled in on the first trial, when the search space and the budget are known
(`resolve`), from \\(n\\), the number of hyperparameters that can mutate,
\\(N\\), the number of distinct genomes, and the budget \\(B\\) (`max_trials`):

\\[
\text{mutation\_genes} = \left(1,\ \max\left(1, \left\lfloor n / 6
    \right\rceil\right)\right), \qquad
\text{population\_size} = \min\left(\operatorname{clip}\left(\left\lfloor
    B / 12 \right\rceil, 4, 20\right),\ \lfloor B / 2 \rfloor,\
    \lfloor N / 2 \rfloor\right)
\\]

(at least 2; \\(B = 120\\) when there is no budget). One mutated gene per child
keeps a child near its parents on short genomes: with GAAF's 1-3 genes of a
3-gene genome most children were close to random. A population of about a
twelfth of the budget leaves most trials to children, and never more than half,
so a small budget still breeds.

**Selection.** The default is a tournament of 5: with the adaptive population
of 5 at 60 trials it breeds from the fittest genome, with 10 at 120 trials from
the better half. GAAF draws elitism, tournament (of 3) or roulette anew each
generation (`"per_generation"`); on the synthetic landscapes that needed more
trials. All of it measured with `benchmarks/search_oracles.py`, chosen on seeds
0-259 and checked on fresh ones (docs/search_oracles.md).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from keras_bnn_af._errors import did_you_mean
from keras_bnn_af.searchers.operators import check_gene_range

__all__ = ["CROSSOVER_TYPES", "SELECTION_POLICIES", "GeneticConfig"]

#: How parents are chosen; `"per_generation"` draws one of the other three per
#: generation, as GAAF does (`"random"` is its old name, still accepted).
SELECTION_POLICIES = ("tournament", "elitism", "roulette", "per_generation")
CROSSOVER_TYPES = ("single_point", "uniform")
_SELECTION_ALIASES = {"random": "per_generation"}
#: Population bounds of the adaptive default, and the budget assumed without one.
_POPULATION_RANGE = (4, 20)
_TRIALS_PER_MEMBER = 12
_GENES_PER_MUTATION = 6
_UNBOUNDED_BUDGET = 120


@dataclass(frozen=True)
class GeneticConfig:
    """How `GeneticOracle` breeds; every field validated on construction.

    # Arguments
        population_size: genomes in the population, `>= 2`; None: adaptive
            (module docstring). GAAF uses about 10.
        selection: `"tournament"` (the default), `"elitism"` (the two
            fittest), `"roulette"` (fitness-proportional) or `"per_generation"`
            (one of those three drawn uniformly per generation of
            `population_size` children, as in GAAF; `"random"` is its old name).
        crossover: `"single_point"` (cut the genome in search-space order) or
            `"uniform"` (each gene from either parent).
        crossover_rate: probability in `[0, 1]` that a child is a crossover of
            its parents rather than a copy of the first parent.
        mutation_genes: `(low, high)`, the inclusive range of the number of genes
            a child mutates, `1 <= low <= high`; None: adaptive. GAAF: `(1, 3)`.
        tournament_size: contestants per tournament, `>= 1`; at or above the
            population size a tournament always picks the fittest.

    # Raises
        ValueError: naming the field, the value, what was expected and the fix.
    """

    population_size: int | None = None
    selection: str = "tournament"
    crossover: str = "single_point"
    crossover_rate: float = 0.9
    mutation_genes: tuple[int, int] | None = None
    tournament_size: int = 5

    def __post_init__(self):
        if self.population_size is not None:
            _check_int("population_size", self.population_size, 2, "10")
        selection = _SELECTION_ALIASES.get(self.selection, self.selection)
        _check_choice("selection", selection, SELECTION_POLICIES)
        _check_choice("crossover", self.crossover, CROSSOVER_TYPES)
        rate = self.crossover_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float):
            rate = math.nan
        if not 0.0 <= rate <= 1.0:
            raise ValueError(
                f"GeneticConfig got crossover_rate={self.crossover_rate!r}; expected "
                "a probability in [0, 1]. Pass e.g. crossover_rate=0.9."
            )
        _check_int("tournament_size", self.tournament_size, 1, "3")
        object.__setattr__(self, "selection", selection)
        object.__setattr__(self, "crossover_rate", float(rate))
        if self.mutation_genes is not None:
            object.__setattr__(
                self,
                "mutation_genes",
                check_gene_range(
                    self.mutation_genes,
                    caller="GeneticConfig",
                    argument="mutation_genes",
                ),
            )

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(field.name for field in dataclasses.fields(cls))

    @classmethod
    def pop_settings(cls, arguments: MutableMapping[str, Any]) -> dict[str, Any]:
        """Removes and returns the entries of `arguments` that are config fields."""
        return {
            name: arguments.pop(name) for name in cls.field_names() if name in arguments
        }

    @classmethod
    def with_settings(
        cls, config: GeneticConfig | None, settings: Mapping[str, Any]
    ) -> GeneticConfig:
        """`config` (or the defaults) with the given fields replaced."""
        if config is not None and not isinstance(config, GeneticConfig):
            raise ValueError(
                f"Got config={config!r} (type {type(config).__name__}); expected a "
                "GeneticConfig or None. Pass GeneticConfig(...) or keyword settings."
            )
        return dataclasses.replace(config or cls(), **settings)

    @property
    def adaptive_fields(self) -> tuple[str, ...]:
        """The fields left to `resolve` (None)."""
        return tuple(
            name
            for name in ("population_size", "mutation_genes")
            if getattr(self, name) is None
        )

    def check_budget(self, max_trials: int | None) -> None:
        """Refuses a population that would leave no trial for a child."""
        if max_trials is not None and (self.population_size or 0) > max_trials:
            raise ValueError(
                f"GeneticConfig got population_size={self.population_size} with "
                f"max_trials={max_trials}; expected population_size <= max_trials, "
                "or the search would end before the first child. Raise max_trials, "
                "lower population_size, or leave it None (adaptive)."
            )

    def resolve(
        self, gene_sizes: Sequence[float], max_trials: int | None
    ) -> GeneticConfig:
        """This config with the adaptive fields filled in (module docstring).

        # Arguments
            gene_sizes: the number of values of each hyperparameter that can
                mutate (`math.inf` for a continuous one).
            max_trials: the budget, or None.
        """
        genes = max(1, len(gene_sizes))
        mutation = self.mutation_genes or (
            1,
            max(1, round(genes / _GENES_PER_MUTATION)),
        )
        population = self.population_size or _adaptive_population(
            gene_sizes, max_trials
        )
        return dataclasses.replace(
            self, population_size=population, mutation_genes=mutation
        )

    def to_json(self) -> dict[str, Any]:
        config = dataclasses.asdict(self)
        if self.mutation_genes is not None:
            config["mutation_genes"] = list(self.mutation_genes)
        return config

    @classmethod
    def from_json(cls, config: Mapping[str, Any]) -> GeneticConfig:
        known = {k: v for k, v in config.items() if k in cls.field_names()}
        if known.get("mutation_genes") is not None:
            known["mutation_genes"] = tuple(known["mutation_genes"])
        return cls(**known)


def _adaptive_population(gene_sizes: Sequence[float], max_trials: int | None) -> int:
    budget = max_trials or _UNBOUNDED_BUDGET
    low, high = _POPULATION_RANGE
    population = min(max(round(budget / _TRIALS_PER_MEMBER), low), high)
    distinct = math.prod(gene_sizes) if gene_sizes else 1
    return max(2, min(population, budget // 2, int(min(distinct, 1e9)) // 2))


def _check_int(name: str, value, least: int, example: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(
            f"GeneticConfig got {name}={value!r}; expected an integer >= {least}. "
            f"Pass e.g. {name}={example}."
        )


def _check_choice(name: str, value, allowed: Sequence[str]) -> None:
    if value not in allowed:
        hint = did_you_mean(value, allowed)
        raise ValueError(
            f"GeneticConfig got {name}={value!r}; expected one of {list(allowed)}."
            f"{hint} Pass one of those."
        )
