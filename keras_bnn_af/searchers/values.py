"""Genomes as value dicts of a keras-tuner search space.

A genome is `{hyperparameter name: value}` with plain Python values, complete
and active-only under the space's conditional scopes. This module draws,
completes, validates and counts such values, and finds another valid value of
one hyperparameter (what a mutation needs), always from an explicit
`random.Random`.

Importing it does not import keras-tuner or TensorFlow: the hyperparameter
classes are looked up when a space is first handled (by then keras-tuner is
loaded, since the space is made of its objects).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # keras-tuner imports TensorFlow; these functions do not need it
    from keras_tuner.engine.hyperparameters import HyperParameter, HyperParameters

__all__ = [
    "MUTATION_SIGMA",
    "active_space",
    "ensure_active_values",
    "gene_sizes",
    "is_mutable",
    "is_valid_value",
    "other_value",
    "random_values",
]

Values = dict[str, Any]

# Standard deviation of a mutation of an unstepped Int or Float, in the
# hyperparameter's own sampling coordinate u in [0, 1) (linear, log, reverse-log).
MUTATION_SIGMA = 0.2
# Relative tolerance when matching a float against a stepped grid point.
_GRID_TOLERANCE = 1e-9
_MAX_RESAMPLES = 100


def ensure_active_values(
    values: Mapping[str, Any], hyperparameters: HyperParameters, rng: random.Random
) -> Values:
    """A complete, active-only values dict, keeping the valid values of `values`.

    The seeded counterpart of `HyperParameters.ensure_active_values` (which
    samples without a seed). The space is visited in order, parents of a
    conditional scope before their children, and a hyperparameter is active when
    all its conditions hold on the values chosen so far. Each active
    hyperparameter keeps its value from `values` when that value is valid for it
    (`is_valid_value`; in the form the hyperparameter samples it, e.g. a stepped
    Float snapped to its grid point), else gets a random one from `rng`; inactive
    names and names outside the space are dropped. Values come out as plain
    Python types.

    # Arguments
        values: the (partial) genome.
        hyperparameters: the search space.
        rng: the random generator, used only for missing or invalid values.

    # Returns
        A new dict `{name: value}` with exactly the active hyperparameters.
    """
    completed: Values = {}
    for hp in hyperparameters.space:
        if not _conditions_hold(hp, completed):
            continue
        value = _canonical(hp, values[hp.name]) if hp.name in values else _INVALID
        completed[hp.name] = _sample(hp, rng) if value is _INVALID else value
    return completed


def random_values(hyperparameters: HyperParameters, rng: random.Random) -> Values:
    """A random complete, active-only genome of `hyperparameters`.

    Each active hyperparameter is drawn with its own sampling
    (`hp.prob_to_value(u)`, `u` uniform in `[0, 1)` from `rng`), like
    `keras_tuner.Oracle._random_values` but from `rng` instead of a seed counter.

    # Arguments
        hyperparameters: the search space.
        rng: the random generator.

    # Returns
        A new dict `{name: value}` of plain Python values.
    """
    return ensure_active_values({}, hyperparameters, rng)


def gene_sizes(hyperparameters: HyperParameters) -> list[float]:
    """How many values each hyperparameter that can mutate has, in space order.

    A `Choice` counts its distinct values, a `Boolean` 2, a stepped `Int` or
    `Float` its grid points, an `Int` without step its integers, and a `Float`
    without step `math.inf`. `Fixed` and one-value hyperparameters are left out.
    A name declared in several conditional scopes counts once.
    """
    sizes: dict[str, float] = {}
    for hp in hyperparameters.space:
        if is_mutable(hp):
            sizes[hp.name] = _value_count(hp)
    return list(sizes.values())


def _value_count(hp: HyperParameter) -> float:
    kind = _kind(hp)
    if kind == "Boolean":
        return 2
    if kind == "Choice":
        return len(set(hp.values))
    if hp.step is not None:
        return _grid_size(hp)
    if kind == "Int":
        return hp.max_value - hp.min_value + 1
    return math.inf


def is_valid_value(hp: HyperParameter, value: Any) -> bool:
    """Whether `value` is one `hp` can take: right type, in range, on its grid.

    `True` is not the choice `1`, `1` not the string `"1"`; an `Int` takes only
    integers, a `Float` integers or floats. Floats match a stepped grid point up
    to a relative tolerance of 1e-9. Unknown hyperparameter types accept any
    value.

    # Arguments
        hp: a keras-tuner hyperparameter.
        value: the candidate value (numpy scalars count as Python ones).

    # Returns
        True if `value` is valid for `hp`.
    """
    return _canonical(hp, value) is not _INVALID


_INVALID = object()


def _kind(hp: HyperParameter) -> str:
    """`"Fixed"`, `"Choice"`, `"Boolean"`, `"Int"`, `"Float"` or `"other"`."""
    from keras_tuner.engine import hyperparameters as kt_hp

    for name in ("Fixed", "Boolean", "Choice", "Int", "Float"):
        if isinstance(hp, getattr(kt_hp, name)):
            return name
    return "other"


def _canonical(hp: HyperParameter, value: Any):
    """`value` in the form `hp` samples it (`2.0` -> the choice `2`, a Float
    snapped to its grid point), or `_INVALID`."""
    value = _plain(value)
    kind = _kind(hp)
    if kind in ("Fixed", "Choice", "Boolean"):
        for option in hp.values:
            if _same_kind(value, option) and value == option:
                return option
        return _INVALID
    if kind in ("Int", "Float"):
        return _canonical_number(hp, value)
    return value


def _canonical_number(hp, value):
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _INVALID
    if _kind(hp) == "Int" and not isinstance(value, int):
        return _INVALID
    if not math.isfinite(value):
        return _INVALID
    slack = _GRID_TOLERANCE * max(1.0, abs(hp.min_value), abs(hp.max_value))
    if not hp.min_value - slack <= value <= hp.max_value + slack:
        return _INVALID
    if hp.step is None:
        return value if _kind(hp) == "Int" else float(value)
    grid_value = _plain(_grid_value(hp, _grid_index(hp, value)))
    return grid_value if _close(grid_value, value) else _INVALID


# --- kinds, grids and plain values ---------------------------------------------


def active_space(values: Mapping[str, Any], hyperparameters: HyperParameters):
    """The hyperparameters of the space active under `values`, last one per name."""
    active = {}
    for hp in hyperparameters.space:
        if _conditions_hold(hp, values):
            active[hp.name] = hp
    return list(active.values())


def _conditions_hold(hp: HyperParameter, values: Mapping[str, Any]) -> bool:
    return all(condition.is_active(values) for condition in hp.conditions)


def _sample(hp: HyperParameter, rng: random.Random):
    return _plain(hp.prob_to_value(rng.random()))


def is_mutable(hp: HyperParameter) -> bool:
    """Whether `hp` has another valid value to mutate to (not Fixed or one-valued)."""
    kind = _kind(hp)
    if kind == "Boolean":
        return True
    if kind == "Choice":
        return len(set(hp.values)) > 1
    if kind in ("Int", "Float"):
        if hp.step is not None:
            return _grid_size(hp) > 1
        return hp.max_value > hp.min_value
    return False


def other_value(hp: HyperParameter, value, rng: random.Random):
    """A valid value of a mutable `hp` different from the valid `value`."""
    kind = _kind(hp)
    if kind == "Boolean":
        return not value
    if kind == "Choice":
        others = [v for v in dict.fromkeys(hp.values) if v != value]
        return _plain(rng.choice(others))
    if hp.step is not None:
        size = _grid_size(hp)
        index = _other_index(_grid_index(hp, value), size, rng)
        return _plain(_grid_value(hp, index))
    return _perturbed_number(hp, value, rng)


def _other_index(index: int, size: int, rng: random.Random) -> int:
    """Uniform in `range(size)` without `index`."""
    other = rng.randrange(size - 1)
    return other + 1 if other >= index else other


def _perturbed_number(hp, value, rng: random.Random):
    """A Gaussian step in the sampling coordinate `u`, reflected into `[0, 1)`."""
    u = min(max(hp.value_to_prob(value), 0.0), 1.0)
    for _ in range(_MAX_RESAMPLES):
        step = rng.normalvariate(0.0, MUTATION_SIGMA)
        candidate = _plain(hp.prob_to_value(_reflect(u + step)))
        if candidate != value and is_valid_value(hp, candidate):
            return candidate
    if _kind(hp) == "Int":  # a few integers: steps rarely leave the bucket
        size = hp.max_value - hp.min_value + 1
        return hp.min_value + _other_index(value - hp.min_value, size, rng)
    return value  # a range narrower than the float resolution: leave it


def _reflect(u: float) -> float:
    """Folds `u` into `[0, 1)` by reflecting at 0 and 1."""
    u = abs(u) % 2.0
    u = 2.0 - u if u > 1.0 else u
    return min(u, math.nextafter(1.0, 0.0))


def _grid_size(hp) -> int:
    # The pinned keras-tuner 1.4.8 counts its own grid here; reusing it keeps the
    # grid identical to the values keras-tuner samples.
    return hp._get_n_values()


def _grid_value(hp, index: int):
    """The `index`-th grid point, exactly as `hp.prob_to_value` samples it."""
    size = _grid_size(hp)
    return hp.prob_to_value((index + 0.5) / size)


def _grid_index(hp, value) -> int:
    """The index of the grid point nearest to `value`."""
    size = _grid_size(hp)
    estimate = hp.value_to_prob(value) * size - 0.5
    candidates = {
        min(max(int(math.floor(estimate)) + shift, 0), size - 1)
        for shift in (-1, 0, 1, 2)
    }
    return min(
        sorted(candidates), key=lambda index: abs(_grid_value(hp, index) - value)
    )


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_GRID_TOLERANCE, abs_tol=_GRID_TOLERANCE)


def _same_kind(a, b) -> bool:
    """Whether `a == b` is a match: `True == 1` is not, `1 == 1.0` is."""
    return isinstance(a, bool) == isinstance(b, bool) and isinstance(
        a, str
    ) == isinstance(b, str)


def _plain(value):
    """`value` as a plain Python `bool`, `int`, `float` or `str` (not numpy)."""
    if hasattr(value, "item") and not isinstance(value, bool | int | float | str):
        value = value.item()
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value
