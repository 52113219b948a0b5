r"""Seeded, pure genetic-algorithm operators over keras-tuner search spaces.

Every operator takes an explicit `random.Random` instance `rng` and touches no
other source of randomness, so a search is reproducible from one seed and its
state can be saved with `rng.getstate()`.

```python
import random

rng = random.Random(0)
parents = tournament([("a", 0.1), ("b", 0.7), ("c", 0.4)], k=2, rng=rng)
child = single_point({"x": 1, "y": 2}, {"x": 3, "y": 4}, ["x", "y"], rng)
child = mutate(child, hyperparameters, rng, genes=(1, 3))
```

Selection works on a population of `(individual, fitness)` pairs, fitness higher
is better (minimise a score by selecting on its negation). Genomes are plain
value dicts `{hyperparameter name: value}` of a `keras_tuner.HyperParameters`
space; values are always plain Python `bool`, `int`, `float` or `str`
(`keras_bnn_af.searchers.values` draws, completes and validates them; its
functions are re-exported here). Importing this module does not import
keras-tuner or TensorFlow.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keras_bnn_af.searchers.values import (
    MUTATION_SIGMA,
    active_space,
    ensure_active_values,
    gene_sizes,
    is_mutable,
    is_valid_value,
    other_value,
    random_values,
)

if TYPE_CHECKING:  # keras-tuner imports TensorFlow; these operators do not need it
    from keras_tuner.engine.hyperparameters import HyperParameters

__all__ = [
    "CROSSOVERS",
    "MUTATION_SIGMA",
    "OperatorError",
    "SELECTIONS",
    "check_gene_range",
    "elitism",
    "ensure_active_values",
    "gene_sizes",
    "is_valid_value",
    "mutate",
    "random_values",
    "roulette",
    "single_point",
    "tournament",
    "uniform",
]

Population = Sequence[tuple[Any, float]]
Values = dict[str, Any]


class OperatorError(ValueError):
    """An operator found no valid result (e.g. no valid child of two parents).

    Search code treats it as a failed proposal and draws again; `reason` is the
    message without the advice on how to fix it.
    """

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


# --- selection ---------------------------------------------------------------


def elitism(population: Population, k: int, rng: random.Random) -> list:
    """The `k` fittest individuals, best first.

    Deterministic: `rng` is accepted for a uniform interface and never used. Ties
    keep the order of `population`.

    # Arguments
        population: a non-empty sequence of `(individual, fitness)`, higher
            fitness is better.
        k: how many individuals to return, `1 <= k <= len(population)`.
        rng: unused.

    # Returns
        A list of `k` distinct individuals sorted by decreasing fitness.

    # Raises
        ValueError: for an empty population, non-finite fitness or `k` outside
            `[1, len(population)]`.
    """
    fitness = _checked_fitness(population, "elitism")
    _check_count(k, "elitism", upper=len(population))
    ranked = sorted(range(len(population)), key=lambda i: -fitness[i])
    return [population[i][0] for i in ranked[:k]]


def tournament(
    population: Population, k: int, rng: random.Random, size: int = 3
) -> list:
    """`k` winners of independent tournaments of `size` random contestants.

    Each tournament draws `min(size, len(population))` distinct contestants
    uniformly and keeps the fittest (ties: the earliest in `population`). The
    tournaments are independent, so one individual can win twice. `size=1` is
    uniform random selection; larger sizes raise the selection pressure: the
    best individual wins a tournament with probability `size / len(population)`.

    # Arguments
        population: a non-empty sequence of `(individual, fitness)`, higher
            fitness is better.
        k: how many winners to return, `k >= 1`.
        rng: the random generator.
        size: contestants per tournament, `size >= 1`.

    # Returns
        A list of `k` individuals.

    # Raises
        ValueError: for an empty population, non-finite fitness, `k < 1` or
            `size < 1`.
    """
    fitness = _checked_fitness(population, "tournament")
    _check_count(k, "tournament")
    _check_count(size, "tournament", argument="size")
    contestants = min(size, len(population))
    winners = []
    for _ in range(k):
        drawn = sorted(rng.sample(range(len(population)), contestants))
        best = max(drawn, key=lambda i: (fitness[i], -i))
        winners.append(population[best][0])
    return winners


def roulette(population: Population, k: int, rng: random.Random) -> list:
    r"""`k` individuals drawn with probability proportional to shifted fitness.

    Raw fitness can be negative or zero (a negated loss), so each individual
    gets the weight

    \\[
    w_i = f_i - \min_j f_j + \delta, \qquad
    \delta = \frac{\max_j f_j - \min_j f_j}{n}, \qquad
    P(i) = \frac{w_i}{\sum_j w_j}
    \\]

    with `n = len(population)`: the weight is the fitness gained over the worst
    individual, plus `delta` so that the worst individual keeps a small chance.
    The weights are invariant to adding a constant to every fitness. When all
    fitness values are equal the draw is uniform. Draws are with replacement.

    # Arguments
        population: a non-empty sequence of `(individual, fitness)`, higher
            fitness is better.
        k: how many individuals to draw, `k >= 1`.
        rng: the random generator (one `rng.random()` per draw).

    # Returns
        A list of `k` individuals.

    # Raises
        ValueError: for an empty population, non-finite fitness or `k < 1`.
    """
    fitness = _checked_fitness(population, "roulette")
    _check_count(k, "roulette")
    worst, best = min(fitness), max(fitness)
    spread = best - worst
    if spread > 0:
        weights = [f - worst + spread / len(fitness) for f in fitness]
    else:
        weights = [1.0] * len(fitness)
    cumulative = []
    total = 0.0
    for weight in weights:
        total += weight
        cumulative.append(total)
    chosen = []
    for _ in range(k):
        index = bisect.bisect_right(cumulative, rng.random() * total)
        chosen.append(population[min(index, len(population) - 1)][0])
    return chosen


SELECTIONS: dict[str, Callable[..., list]] = {
    "elitism": elitism,
    "tournament": tournament,
    "roulette": roulette,
}


# --- crossover ---------------------------------------------------------------


def single_point(
    a: Mapping[str, Any], b: Mapping[str, Any], order: Sequence[str], rng
) -> Values:
    """One child: the genes of `a` before a random cut of `order`, then `b`'s.

    The cut `c` is uniform in `1 .. len(order) - 1`, so the child takes at least
    one gene from each parent: `order[:c]` from `a`, `order[c:]` from `b`. A gene
    its parent lacks (inactive under a conditional scope) comes from the other
    parent; names outside `order` are ignored. With fewer than two genes there
    is no cut and the child is a copy of `a` (restricted to `order`).

    # Arguments
        a: the first parent's values.
        b: the second parent's values.
        order: the chromosome: gene names in a fixed order, e.g. the names of a
            `HyperParameters.space`.
        rng: the random generator.

    # Returns
        The child's values (a new dict, possibly not complete for conditional
        spaces: see `ensure_active_values`).
    """
    genes = list(dict.fromkeys(order))
    if len(genes) < 2:
        return {name: a[name] for name in genes if name in a}
    cut = rng.randint(1, len(genes) - 1)
    return _combine(a, b, genes, [True] * cut + [False] * (len(genes) - cut))


def uniform(a: Mapping[str, Any], b: Mapping[str, Any], rng) -> Values:
    """One child taking each gene from `a` or `b` with probability 1/2.

    Genes are visited in the order of `a`, then the genes only `b` has; a gene
    its chosen parent lacks comes from the other parent.

    # Arguments
        a: the first parent's values.
        b: the second parent's values.
        rng: the random generator (one `rng.random()` per gene).

    # Returns
        The child's values (a new dict, possibly not complete for conditional
        spaces: see `ensure_active_values`).
    """
    genes = list(dict.fromkeys([*a, *b]))
    return _combine(a, b, genes, [rng.random() < 0.5 for _ in genes])


CROSSOVERS: dict[str, Callable[..., Values]] = {
    "single_point": single_point,
    "uniform": lambda a, b, order, rng: uniform(a, b, rng),
}


def _combine(a, b, genes, from_a) -> Values:
    child = {}
    for name, take_a in zip(genes, from_a, strict=True):
        first, second = (a, b) if take_a else (b, a)
        if name in first:
            child[name] = first[name]
        elif name in second:
            child[name] = second[name]
    return child


# --- mutation ----------------------------------------------------------------


def mutate(
    values: Mapping[str, Any],
    hyperparameters: HyperParameters,
    rng: random.Random,
    genes: tuple[int, int] = (1, 3),
) -> Values:
    """Changes between `genes[0]` and `genes[1]` active genes to other valid values.

    The number of genes `m` is uniform in `genes` (capped by the number of
    mutable active genes), the genes are drawn without replacement, and each
    gets a value different from its current one:

    - `Choice`: another of its values, uniformly;
    - `Boolean`: the other truth value;
    - `Int` and `Float` with a step: another grid point, uniformly;
    - `Float` and `Int` without step: a Gaussian step of `MUTATION_SIGMA` in the
      hyperparameter's sampling coordinate `u in [0, 1)` (so a log-sampled
      value moves by a factor rather than an offset), reflected at the bounds
      and redrawn until the value changes.

    `Fixed` hyperparameters, one-value `Choice`s and empty ranges never mutate.
    Changing a parent of a conditional scope can switch other genes on or off:
    the result is passed through `ensure_active_values`, so genes that become
    active get a seeded random value and inactive ones are removed.

    # Arguments
        values: the genome to mutate; completed first with
            `ensure_active_values`.
        hyperparameters: the search space.
        rng: the random generator.
        genes: `(low, high)`, the inclusive range of the number of genes to
            change, `1 <= low <= high`.

    # Returns
        A new complete, active-only values dict.

    # Raises
        ValueError: for a malformed `genes`.
    """
    low, high = check_gene_range(genes)
    current = ensure_active_values(values, hyperparameters, rng)
    mutable = {
        hp.name: hp for hp in active_space(current, hyperparameters) if is_mutable(hp)
    }
    count = min(rng.randint(low, high), len(mutable))
    mutated = dict(current)
    for name in rng.sample(list(mutable), count):
        mutated[name] = other_value(mutable[name], current[name], rng)
    return ensure_active_values(mutated, hyperparameters, rng)


def _checked_fitness(population: Population, scheme: str) -> list[float]:
    if len(population) == 0:
        raise ValueError(
            f"{scheme} got an empty population; expected at least one "
            "(individual, fitness) pair. Evaluate some individuals first."
        )
    fitness = [float(f) for _, f in population]
    bad = [f for f in fitness if not math.isfinite(f)]
    if bad:
        raise ValueError(
            f"{scheme} got non-finite fitness values {bad}; expected finite "
            "numbers. Drop failed or diverged individuals before selecting."
        )
    return fitness


def _check_count(count: int, scheme: str, argument: str = "k", upper=None) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(
            f"{scheme} got {argument}={count!r}; expected an integer >= 1. "
            f"Pass e.g. {argument}=2."
        )
    if upper is not None and count > upper:
        raise ValueError(
            f"{scheme} got {argument}={count} for a population of {upper}; "
            f"expected {argument} <= {upper}. Select fewer individuals."
        )


def check_gene_range(
    genes: Iterable[int], caller: str = "mutate", argument: str = "genes"
) -> tuple[int, int]:
    """`genes` as `(low, high)` with `1 <= low <= high`, else a ValueError."""
    bounds = tuple(genes) if isinstance(genes, list | tuple) else None
    if (
        bounds is None
        or len(bounds) != 2
        or any(isinstance(b, bool) or not isinstance(b, int) for b in bounds)
        or not 1 <= bounds[0] <= bounds[1]
    ):
        raise ValueError(
            f"{caller} got {argument}={genes!r}; expected (low, high) integers "
            "with 1 <= low <= high, the range of the number of genes to change. "
            f"Pass e.g. {argument}=(1, 3)."
        )
    return bounds
